"""Do low-rank genes help on this target? Pruning-only vs low-rank + pruning search on CIFAR ResNet-56.

Both searches are flat NSGA-III over (error, params, latency) with the same seed, population,
generations and approximate evaluator (prune, factorise by truncated SVD, recalibrate BatchNorm, a few
fine-tuning steps, top-1 error on a validation subset); the low-rank one also has a rank gene per
factorisable conv (``--rank-genes``). Every front member is measured end to end with ONNX Runtime
(1 intra-op thread) and the benchmark reports, per search: the hypervolume in (error, measured latency
/ unpruned latency) space, and the best measured latency among members within 1.5 points of the
unpruned network's approximate error. Both fronts are measured together after the searches, in
shuffled passes (``search_quality.LatencyLab``). Needs the host-cpu table's rank kernels
(``edgeprune profile --target host-cpu --model resnet56 --ranks``).

    python benchmarks/lowrank_search.py --evals 120 --workers 2   # writes benchmarks/results/lowrank_search.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from bench_common import command_line, write_result
from search_quality import SHARED, LatencyLab, MemoExecutor, measured_front

from edgeprune.config import DataConfig, ModelConfig
from edgeprune.graph import PruningPlan
from edgeprune.search.config import SearchConfig
from edgeprune.search.evaluator import Evaluator, EvaluatorSpec
from edgeprune.search.executor import make_executor
from edgeprune.search.run import build_space, run_search

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=120, help="evaluation budget per search")
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--val-size", type=int, default=500)
    ap.add_argument("--finetune-steps", type=int, default=10)
    ap.add_argument("--max-drop", type=float, default=1.5, help="accuracy points for the best-latency figure")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "lowrank_search.json")
    args = ap.parse_args()
    t_start = time.time()
    torch.manual_seed(args.seed)
    model_cfg = ModelConfig(name="resnet56", weights=SHARED / "pretrained" / "resnet56-4bfd9763.th")
    data_cfg = DataConfig(source=str(SHARED / "cifar10"), seed=args.seed)
    base_cfg = SearchConfig(population=args.population, generations=max(1, args.evals // args.population),
                            seed=args.seed, val_size=args.val_size, calib_batches=2, workers=args.workers,
                            finetune_steps=args.finetune_steps)  # fmt: skip
    results: dict[str, dict] = {}
    work = Path(tempfile.mkdtemp(prefix="edgeprune-lr-"))
    lab = None
    fronts: dict[str, list[tuple[PruningPlan, dict[str, float]]]] = {}
    for name, ranks in (("pruning_only", False), ("lowrank_pruning", True)):
        t0 = time.time()
        spec = EvaluatorSpec(
            model_cfg, data_cfg, "host-cpu", base_cfg.model_copy(update={"rank_genes": ranks})
        )
        evaluator = Evaluator(spec)
        if lab is None:
            lab = LatencyLab(evaluator.model, evaluator.example, work)
            ref_pred_ms = evaluator.predictor.predict_ms(evaluator.model, evaluator.input_shape)
            unpruned_error = evaluator.evaluate(PruningPlan())["error"]
        executor = MemoExecutor(make_executor("local", spec, args.workers, evaluator=evaluator))
        budget = results.get("pruning_only", {}).get("n_evals")
        if budget is not None:
            spec = EvaluatorSpec(
                model_cfg, data_cfg, "host-cpu", spec.search.model_copy(update={"max_evals": budget})
            )
        r = run_search(spec, work / name, evaluator=evaluator, executor=executor)
        executor.inner.close()
        fronts[name] = [(c.plan, c.metrics) for c in r.front_candidates()]
        results[name] = {
            "n_evals": r.n_evals,
            "genes": build_space(evaluator).n_var,
            "members_with_ranks": sum(bool(p.ranks) for p, _ in fronts[name]),
            "seconds": round(time.time() - t0, 1),
        }
        print(
            f"{name:16s} evals {r.n_evals:4d}  front {len(fronts[name]):3d}  ({time.time() - t0:.0f} s)",
            flush=True,
        )
    assert lab is not None
    # both fronts measured together, in shuffled passes (see search_quality.LatencyLab)
    lab.measure_all([PruningPlan(), *(p for recs in fronts.values() for p, _ in recs)], seed=args.seed)
    ref_ms = lab.ms[PruningPlan().key()]
    for name, recs in fronts.items():
        front = measured_front(recs, lab, ref_ms, ref_pred_ms)
        within = [
            (lab.ms[p.key()] / ref_ms, p, m)
            for p, m in recs
            if m["error"] <= unpruned_error + args.max_drop / 100
        ]
        best_rel, best_plan, best_m = min(within, key=lambda t: t[0])
        results[name].update({
            **front,
            "best_within_drop": {
                "latency_rel": best_rel,
                "measured_speedup": 1.0 / best_rel,
                "error": best_m["error"],
                "params": best_m["params"],
                "ranks": dict(best_plan.ranks),
                "dropped_blocks": len(best_plan.drop_blocks),
            },
        })  # fmt: skip
        print(
            f"{name:16s} HV {front['hypervolume']:.4f}  "
            f"best within {args.max_drop} pt: {1.0 / best_rel:.2f}x ({len(best_plan.ranks)} ranks)",
            flush=True,
        )
    lr, po = results["lowrank_pruning"], results["pruning_only"]
    verdict = (
        "low-rank genes help"
        if lr["hypervolume"] > po["hypervolume"]
        and lr["best_within_drop"]["measured_speedup"] >= po["best_within_drop"]["measured_speedup"]
        else "low-rank genes do not help on this target at this budget"
    )
    out = {
        "benchmark": "lowrank_search", "model": "resnet56", "target": "host-cpu",
        "unpruned_measured_ms": ref_ms, "unpruned_approx_error": unpruned_error, "results": results,
        "verdict": verdict, "seconds": round(time.time() - t_start, 1),
        "command": command_line(__file__, args),
    }  # fmt: skip
    write_result(args.out, out)
    print(f"{verdict}; wrote {args.out} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
