"""Search quality on CIFAR ResNet-56, target host-cpu (issue 5's benchmark).

The host-cpu table is profiled on this machine in the run, into a fresh ``$EDGEPRUNE_HOME``. For our flat NSGA-III (latency from the table), the bi-level search, NSGA-III with FLOPs in place of
latency, random search and uniform L1 pruning — all through the same approximate evaluator at (about)
equal evaluation budget (every method cut at the flat search's count) — it measures every front
member end to end with ONNX Runtime (1 intra-op thread), all of them together after the searches, and
reports the hypervolume in (error, measured latency / unpruned latency) space. Then it
fine-tunes the knee of our search and the unpruned network with the same recipe and reports the knee's
measured speedup (interleaved in one run) and its test-accuracy drop.

    python benchmarks/search_quality.py --evals 200 --workers 2   # writes benchmarks/results/search_quality.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from bench_common import command_line, write_result

from edgeprune.config import DataConfig, ModelConfig
from edgeprune.data import load_data
from edgeprune.export.onnx_export import export_onnx
from edgeprune.graph import PruningPlan, apply_plan
from edgeprune.latency import load_profile
from edgeprune.latency.profile_run import profile_model
from edgeprune.latency.timing import interleaved_benchmark
from edgeprune.models import build_model
from edgeprune.runtime import get_runtime
from edgeprune.search.baselines import random_search, uniform_baseline
from edgeprune.search.cache import EvaluationCache
from edgeprune.search.config import SearchConfig
from edgeprune.search.evaluator import Evaluator, EvaluatorSpec
from edgeprune.search.executor import make_executor
from edgeprune.search.front import hypervolume, non_dominated
from edgeprune.search.problem import CandidateStore
from edgeprune.search.run import run_search
from edgeprune.space import SearchSpace
from edgeprune.train import evaluate_accuracy, fine_tune, recalibrate_changed_bn

OBJECTIVE_KEYS = {"error": "error", "params": "params", "latency": "latency_ms", "macs": "macs"}
ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared" / "data").resolve()


class MemoExecutor:
    """Shares evaluations between the compared methods (each still counts its own distinct evaluations)."""

    def __init__(self, inner):  # type: ignore[no-untyped-def]
        self.inner = inner
        self.memo: dict[str, dict[str, float]] = {}

    def map(self, plans: Sequence[PruningPlan]) -> list[dict[str, float]]:
        todo = [p for p in dict.fromkeys(plans) if p.key() not in self.memo]
        for p, m in zip(todo, self.inner.map(todo) if todo else [], strict=True):
            self.memo[p.key()] = m
        return [self.memo[p.key()] for p in plans]

    def close(self) -> None:
        pass


class LatencyLab:
    """Measures networks end to end with ONNX Runtime at the target's threads (default: 1).

    All plans are measured together after every search has finished: each pass visits every plan once
    in a fresh random order (warm-up, then the median of ``repetitions`` calls), and a plan's latency is
    the minimum of its pass medians. The methods ran minutes apart; measuring each front right after
    its search let the machine's drift (25 % within one run here) land on one method and not another.
    """

    def __init__(
        self,
        base: torch.nn.Module,
        example: torch.Tensor,
        workdir: Path,
        threads: int = 1,
        spinning: bool = True,
    ):
        self.base, self.example, self.workdir = base, example, workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.runtime = get_runtime("onnxruntime-cpu", threads, spinning)
        self.ms: dict[str, float] = {}

    def session(self, plan: PruningPlan, name: str):  # type: ignore[no-untyped-def]
        path = self.workdir / f"{name}.onnx"
        export_onnx(apply_plan(self.base, plan, self.example), self.example, path)
        return self.runtime.load(path)

    def measure_all(
        self, plans: Sequence[PruningPlan], passes: int = 3, repetitions: int = 40, seed: int = 0
    ) -> None:
        todo = [p for p in dict.fromkeys(plans) if p.key() not in self.ms]
        sessions = [self.session(p, f"m{i}") for i, p in enumerate(todo)]
        x = self.example.numpy()
        best = [float("inf")] * len(todo)
        rng = np.random.default_rng(seed)
        for _ in range(passes):
            for i in rng.permutation(len(todo)):
                ms = sessions[i].benchmark(x, warmup=10, repetitions=repetitions, passes=1).median_ms
                best[i] = min(best[i], ms)
        self.ms.update({p.key(): ms for p, ms in zip(todo, best, strict=True)})


def measured_front(
    records: list[tuple[PruningPlan, dict[str, float]]], lab: LatencyLab, ref_ms: float, ref_pred_ms: float
) -> dict:
    """The HV of a method's front (by its own objectives) in measured space, and in predicted space."""
    pts = np.array([[m["error"], lab.ms[p.key()] / ref_ms] for p, m in records])
    pred = np.array([[m["error"], m["latency_ms"] / ref_pred_ms] for _, m in records])
    nd = non_dominated(pts)
    return {
        "front_size": len(records),
        "hypervolume": hypervolume(pts[nd], (1.0, 1.1)),
        "hypervolume_predicted_latency": hypervolume(pred[non_dominated(pred)], (1.0, 1.1)),
        "points": [{"error": float(pts[i, 0]), "latency_rel": float(pts[i, 1])} for i in nd],
    }


def first_front(
    evaluated: list[tuple[PruningPlan, dict[str, float]]], objectives: Sequence[str], budget: int
) -> list[tuple[PruningPlan, dict[str, float]]]:
    """The non-dominated members, by the method's own objectives, of its first ``budget`` evaluations.

    Population-based searches stop at a generation's end, so their counts differ by a few; cutting
    every method at the flat search's count makes the budget exactly equal.
    """
    head = evaluated[:budget]
    keys = [OBJECTIVE_KEYS[o] for o in objectives]
    F = np.array([[m[k] for k in keys] for _, m in head])
    return [head[i] for i in non_dominated(F)]


def plot_fronts(out: dict, path: Path) -> Path:
    """Every method's measured front as a staircase in (latency / unpruned, error), the knee marked."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8))
    for method, r in out["methods"].items():
        pts = sorted((p["latency_rel"], p["error"]) for p in r["points"])
        xs, ys = zip(*pts, strict=True)
        ax.step(xs, ys, where="post", marker="o", ms=3, label=f"{method} (HV {r['hypervolume']:.3f})")
    knee = out.get("knee") or {}
    if knee:
        x = 1.0 / knee["measured_speedup"]  # measured interleaved with the unpruned network, after finalize
        ax.scatter([x], [knee["search_metrics"]["error"]], s=180, marker="*", c="#d62728", zorder=5,
                   label=f"knee: {knee['measured_speedup']:.2f}x, {knee['drop_vs_unpruned_finetuned_points']:.2f} pt")  # fmt: skip
    ax.set_xlabel("measured latency / unpruned (ONNX Runtime, 1 thread)")
    ax.set_ylabel("approximate error (search)")
    ax.set_title(f"ResNet-56 on host-cpu, seed {out['args'].get('seed', '?')}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=200, help="evaluation budget per method")
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--val-size", type=int, default=500)
    ap.add_argument("--finetune-epochs", type=int, default=4)
    ap.add_argument(
        "--finetune-steps", type=int, default=10, help="SGD steps inside each approximate evaluation"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="nsga3,bilevel,nsga3-flops,random,uniform")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "search_quality.json")
    ap.add_argument("--plot", type=Path, help="only redraw the PNG of an earlier run's JSON")
    args = ap.parse_args()
    if args.plot is not None:
        print(f"wrote {plot_fronts(json.loads(args.plot.read_text()), args.plot.with_suffix('.png'))}")
        return
    t_start = time.time()
    torch.manual_seed(args.seed)
    weights = SHARED / "pretrained" / "resnet56-4bfd9763.th"
    data_cfg = DataConfig(source=str(SHARED / "cifar10"), seed=args.seed)
    model_cfg = ModelConfig(name="resnet56", weights=weights)
    # the table is measured on this machine in the run, as a user's first compile does (no committed table)
    os.environ["EDGEPRUNE_HOME"] = tempfile.mkdtemp(prefix="edgeprune-sq-home-")
    profile_model(load_profile("host-cpu"), build_model(model_cfg).model, (3, 32, 32), model_name="resnet56")
    gens = max(1, args.evals // args.population)
    base_cfg = SearchConfig(population=args.population, generations=gens, seed=args.seed, val_size=args.val_size,
                            calib_batches=2, workers=args.workers, finetune_steps=args.finetune_steps)  # fmt: skip
    spec = EvaluatorSpec(model_cfg, data_cfg, "host-cpu", base_cfg)
    evaluator = Evaluator(spec)
    inner = make_executor("local", spec, args.workers, evaluator=evaluator)
    memo = MemoExecutor(inner)
    work = Path(tempfile.mkdtemp(prefix="edgeprune-sq-"))
    lab = LatencyLab(evaluator.model, evaluator.example, work)
    unpruned = PruningPlan()
    results: dict[str, dict] = {}
    evaluated: dict[str, tuple[list[tuple[PruningPlan, dict[str, float]]], tuple[str, ...]]] = {}
    ours = None
    space = SearchSpace.from_analysis(evaluator.analysis, evaluator.profile.channel_multiple)
    for method in args.methods.split(","):
        t0 = time.time()
        if method in ("nsga3", "bilevel", "nsga3-flops"):
            budget = results.get("nsga3", {}).get("n_evals")  # the others stop at our search's budget
            cfg = base_cfg.model_copy(update={
                "strategy": "bilevel" if method == "bilevel" else "nsga3",
                "max_evals": budget if method == "bilevel" else None,
                "objectives": ("error", "params", "macs") if method == "nsga3-flops" else ("error", "params", "latency"),
            })  # fmt: skip
            r = run_search(
                EvaluatorSpec(model_cfg, data_cfg, "host-cpu", cfg),
                work / method,
                evaluator=evaluator,
                executor=memo,
            )
            evaluated[method] = ([(c.plan, c.metrics) for c in r.candidates], cfg.objectives)
            n_evals = r.n_evals
            if method == "nsga3":
                ours = r
        else:
            budget = results.get("nsga3", {}).get("n_evals", args.evals)
            store = CandidateStore(EvaluationCache(), memo)
            plans_metrics = (uniform_baseline(space, store) if method == "uniform"
                             else random_search(space, store, budget, args.seed))  # fmt: skip
            items = [(PruningPlan.from_json(plan), m) for _, plan, m in store.cache.items()]
            evaluated[method] = (items, ("error", "params", "latency"))
            n_evals = len(plans_metrics)
        results[method] = {"n_evals": n_evals, "search_seconds": round(time.time() - t0, 1)}
        print(f"{method:12s} evals {n_evals:4d}  ({time.time() - t0:.0f} s)", flush=True)
    inner.close()
    budget = results.get("nsga3", {}).get("n_evals", args.evals)
    fronts = {method: first_front(ev, objectives, budget) for method, (ev, objectives) in evaluated.items()}
    for method in results:
        results[method]["evals_counted"] = min(budget, len(evaluated[method][0]))
    t0 = time.time()
    lab.measure_all([unpruned, *(p for recs in fronts.values() for p, _ in recs)], seed=args.seed)
    ref_ms = lab.ms[unpruned.key()]
    ref_pred_ms = evaluator.predictor.predict_ms(evaluator.model, evaluator.input_shape)
    print(f"measured {len(lab.ms)} networks, 3 shuffled passes ({time.time() - t0:.0f} s)", flush=True)
    for method, recs in fronts.items():
        front = measured_front(recs, lab, ref_ms, ref_pred_ms)
        results[method].update(front)
        print(f"{method:12s} HV(error, measured latency) {front['hypervolume']:.4f}  "
              f"HV(error, predicted latency) {front['hypervolume_predicted_latency']:.4f}", flush=True)  # fmt: skip
    knee_report = {}
    if ours is not None:
        knee = ours.candidates[ours.picks["knee"]]
        data = load_data(data_cfg)
        base = build_model(model_cfg).model
        original_acc = evaluate_accuracy(base, data.test.x, data.test.y)
        tuned = {}
        for name, plan in (("unpruned", unpruned), ("knee", knee.plan)):
            t0 = time.time()
            net = recalibrate_changed_bn(base, apply_plan(base, plan, evaluator.example), data.calib.x)
            fine_tune(
                net,
                data.train.x,
                data.train.y,
                epochs=args.finetune_epochs,
                lr=0.01,
                batch_size=128,
                seed=args.seed,
            )
            tuned[name] = (net.eval(), evaluate_accuracy(net, data.test.x, data.test.y))
            print(
                f"fine-tuned {name}: test accuracy {tuned[name][1]:.2%} ({time.time() - t0:.0f} s)",
                flush=True,
            )
        sess = {
            n: lab.runtime.load(export_onnx(tuned[n][0], evaluator.example, work / f"{n}.onnx").path)
            for n in tuned
        }
        x = evaluator.example.numpy()
        st = interleaved_benchmark(
            [lambda s=sess["unpruned"]: s.run(x), lambda s=sess["knee"]: s.run(x)],
            warmup=30,
            repetitions=100,
            passes=5,
        )
        knee_report = {
            "plan": knee.plan.to_dict(),
            "search_metrics": knee.metrics,
            "unpruned_ms": st[0].median_ms,
            "knee_ms": st[1].median_ms,
            "measured_speedup": st[0].median_ms / st[1].median_ms,
            "test_acc_original_weights": original_acc,
            "test_acc_unpruned_finetuned": tuned["unpruned"][1],
            "test_acc_knee_finetuned": tuned["knee"][1],
            "drop_vs_unpruned_finetuned_points": 100 * (tuned["unpruned"][1] - tuned["knee"][1]),
            "drop_vs_original_points": 100 * (original_acc - tuned["knee"][1]),
            "finetune_epochs": args.finetune_epochs,
        }
        print(f"knee: speedup {knee_report['measured_speedup']:.2f}x (measured, ORT 1 thread), "
              f"accuracy drop {knee_report['drop_vs_unpruned_finetuned_points']:.2f} pt vs unpruned fine-tuned, "
              f"{knee_report['drop_vs_original_points']:.2f} pt vs original weights", flush=True)  # fmt: skip
    out = {
        "benchmark": "search_quality", "model": "resnet56", "target": "host-cpu", "args": {k: str(v) for k, v in vars(args).items()},
        "unpruned_measured_ms": ref_ms, "methods": results, "knee": knee_report, "seconds": round(time.time() - t_start, 1),
        "command": command_line(__file__, args),
    }  # fmt: skip
    write_result(args.out, out)
    plot_fronts(out, args.out.with_suffix(".png"))
    print(f"wrote {args.out} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
