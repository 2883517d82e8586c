"""Does the search's approximate error rank candidates as fine-tuning would? (CIFAR ResNet-56)

A flat NSGA-III search (error, params, latency on host-cpu) scores candidates with the approximate
evaluator. The benchmark takes ``--members`` candidates from the search's first non-dominated fronts
(in search objectives; spread evenly over their predicted latency), then

* fine-tunes each with the finalize recipe (``FinalizeConfig``'s defaults unless given: epochs, lr,
  batch size, cosine schedule, the same training images) and measures test error on the 10k test set;
* re-scores each with several approximate-evaluation variants (cheap: seconds each) and reports
  Kendall τ between each variant's approximate error and the final test error, with its cost per
  evaluation.

Variants: ``default`` (the search's settings: BN re-estimation on 4 batches, 1000 validation images,
no fine-tune steps), ``bn16`` (16 re-estimation batches), ``steps20`` (20 SGD steps after BN
re-estimation), ``kd20`` (the same 20 steps distilled from the unpruned network), ``val5k`` (re-estimation as default, judged on 5000 validation images
drawn from the training split the fine-tune does not otherwise see).

    python benchmarks/approx_ranking.py --evals 120 --members 20 --seed 0   # ~1 h on 2 cores

The JSON is written after every member and keeps every member's plan; ``--resume`` continues a run
that was stopped, from its JSON (the search and the members done are not redone).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_common import command_line, write_result
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from scipy.stats import kendalltau

from edgeprune.config import DataConfig, ModelConfig
from edgeprune.data import load_data
from edgeprune.graph import PruningPlan, apply_plan
from edgeprune.latency import load_profile
from edgeprune.latency.profile_run import profile_model
from edgeprune.models import build_model
from edgeprune.pipeline_config import FinalizeConfig
from edgeprune.search.config import SearchConfig
from edgeprune.search.evaluator import Evaluator, EvaluatorSpec, torch_threads
from edgeprune.search.result import Candidate
from edgeprune.search.run import run_search
from edgeprune.train import evaluate_accuracy, fine_tune, recalibrate_changed_bn

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared" / "data").resolve()


def pick_members(cands: list, n: int) -> list:
    """``n`` candidates from the first non-dominated fronts (search objectives), spread over latency."""
    F = np.array([[c.metrics["error"], c.metrics["params"], c.metrics["latency_ms"]] for c in cands])
    chosen: list[int] = []
    for front in NonDominatedSorting().do(F):
        chosen.extend(int(i) for i in front)
        if len(chosen) >= 2 * n:
            break
    chosen.sort(key=lambda i: F[i, 2])
    idx = np.unique(np.round(np.linspace(0, len(chosen) - 1, n)).astype(int))
    return [cands[chosen[i]] for i in idx]


def approx_error(
    base: torch.nn.Module,
    plan: PruningPlan,
    example: torch.Tensor,
    calib_x: torch.Tensor,
    tune: tuple[torch.Tensor, torch.Tensor] | None,
    teacher: torch.nn.Module | None,
    val: tuple[torch.Tensor, torch.Tensor],
    seed: int,
) -> float:
    """Error of ``plan`` after BN re-estimation on ``calib_x`` and the optional short fine-tune."""
    net = recalibrate_changed_bn(base, apply_plan(base, plan, example), calib_x, batch_size=128)
    if tune is not None:
        fine_tune(net, tune[0], tune[1], epochs=1, lr=0.01, batch_size=128, seed=seed, teacher=teacher)
    return 1.0 - evaluate_accuracy(net.eval(), val[0], val[1], batch_size=128)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=120)
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--members", type=int, default=20)
    ap.add_argument("--final-epochs", type=int, default=FinalizeConfig().epochs)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the fine-tunes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "approx_ranking.json")
    ap.add_argument("--resume", action="store_true", help="continue the stopped run written to --out")
    args = ap.parse_args()
    if args.resume and not args.out.is_file():
        raise SystemExit(f"--resume: {args.out} does not exist; start the run without --resume")
    t_start = time.time()
    torch.manual_seed(args.seed)
    model_cfg = ModelConfig(name="resnet56", weights=SHARED / "pretrained" / "resnet56-4bfd9763.th")
    data_cfg = DataConfig(source=str(SHARED / "cifar10"), seed=args.seed)
    cfg = SearchConfig(
        population=args.population, generations=max(1, args.evals // args.population), seed=args.seed
    )
    previous = json.loads(args.out.read_text()) if args.resume else None
    os.environ["EDGEPRUNE_HOME"] = tempfile.mkdtemp(prefix="edgeprune-approx-home-")  # a new machine
    if previous is None:  # profiled before the evaluator, which reads the table when it is made
        profile_model(
            load_profile("host-cpu"), build_model(model_cfg).model, (3, 32, 32), model_name="resnet56"
        )
    spec = EvaluatorSpec(model_cfg, data_cfg, "host-cpu", cfg)
    evaluator = Evaluator(spec)
    if previous is not None:
        members = [
            Candidate(PruningPlan.from_dict(m["plan"]), tuple(m["genome"]), m["metrics"])
            for m in previous["member_list"]
        ]
        n_evals, rows = previous["search_evals"], previous["rows"]
        print(f"resuming {args.out}: {len(rows)} of {len(members)} members done", flush=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="edgeprune-approx-"))
        result = run_search(spec, work / "search", evaluator=evaluator)
        members, n_evals, rows = pick_members(list(result.candidates), args.members), result.n_evals, []
        print(
            f"search: {n_evals} evaluations ({time.time() - t_start:.0f} s); {len(members)} members",
            flush=True,
        )
    member_list = [
        {"plan": c.plan.to_dict(), "genome": [int(g) for g in c.genome], "metrics": dict(c.metrics)}
        for c in members
    ]
    seconds_before = previous["seconds"] if previous else 0.0

    data = load_data(data_cfg)
    base, example = evaluator.model, evaluator.example
    teacher = copy.deepcopy(base).eval()
    fin = FinalizeConfig()
    steps = 20
    tune = (data.train.x[: steps * 128], data.train.y[: steps * 128])
    # 5000 held-out images from the end of the training split (the search's fine-tune steps read its head)
    val5k = (data.train.x[-5000:], data.train.y[-5000:])
    val = (data.val.x[: cfg.val_size], data.val.y[: cfg.val_size])
    variants = {
        "default": dict(calib=data.train.x[: cfg.calib_batches * 128], tune=None, teacher=None, val=val),
        "bn16": dict(calib=data.train.x[: 16 * 128], tune=None, teacher=None, val=val),
        "steps20": dict(calib=data.train.x[: cfg.calib_batches * 128], tune=tune, teacher=None, val=val),
        "kd20": dict(calib=data.train.x[: cfg.calib_batches * 128], tune=tune, teacher=teacher, val=val),
        "val5k": dict(calib=data.train.x[: cfg.calib_batches * 128], tune=None, teacher=None, val=val5k),
    }
    approx: dict[str, list[float]] = {k: [r[f"approx_{k}"] for r in rows] for k in variants}
    cost_s: dict[str, float] = (
        dict(previous["seconds_in_variants"]) if previous else {k: 0.0 for k in variants}
    )
    final: list[float] = [r["final_test_error"] for r in rows]
    for i, c in enumerate(members):
        if i < len(rows):
            continue
        with torch_threads(1):
            for name, v in variants.items():
                t0 = time.perf_counter()
                approx[name].append(
                    approx_error(
                        base, c.plan, example, v["calib"], v["tune"], v["teacher"], v["val"], args.seed
                    )
                )
                cost_s[name] += time.perf_counter() - t0
        t0 = time.time()
        with torch_threads(args.threads):
            net = recalibrate_changed_bn(base, apply_plan(base, c.plan, example), data.calib.x)
            fine_tune(
                net,
                data.train.x,
                data.train.y,
                epochs=args.final_epochs,
                lr=fin.lr,
                batch_size=fin.batch_size,
                seed=args.seed,
            )
            err = 1.0 - evaluate_accuracy(net.eval(), data.test.x, data.test.y)
        final.append(err)
        rows.append({
            "latency_ms_predicted": c.metrics["latency_ms"], "params": c.metrics["params"],
            "search_error": c.metrics["error"], "final_test_error": err,
            **{f"approx_{k}": approx[k][-1] for k in variants},
        })  # fmt: skip
        print(f"member {i + 1}/{len(members)}: latency {c.metrics['latency_ms']:.3f} ms, approx "
              + ", ".join(f"{k} {approx[k][-1]:.3f}" for k in variants)
              + f" -> final {err:.4f} ({time.time() - t0:.0f} s)", flush=True)  # fmt: skip
        # written after every member: a run cut short still leaves its figures
        taus = {k: round(float(kendalltau(approx[k], final).statistic), 3) for k in variants}
        per_eval = {k: round(cost_s[k] / len(final), 2) for k in variants}
        out = {
            "benchmark": "approx_ranking", "model": "resnet56", "data": "cifar10 (10k train, 10k test)",
            "search_evals": n_evals, "members": len(members), "members_done": len(final),
            "final_recipe": {
                "epochs": args.final_epochs, "lr": fin.lr, "batch_size": fin.batch_size, "schedule": "cosine",
                "train_images": len(data.train)},
            "kendall_tau": taus, "seconds_per_evaluation": per_eval, "seconds_in_variants": cost_s,
            "rows": rows, "member_list": member_list,
            "seconds": round(seconds_before + time.time() - t_start, 1), "command": command_line(__file__, args),
        }  # fmt: skip
        write_result(args.out, out)
    print("\nvariant   tau(approx, final)   s / evaluation")
    for k in variants:
        print(f"{k:9s} {taus[k]:8.3f} {per_eval[k]:16.2f}")
    print(f"wrote {write_result(args.out, out)} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
