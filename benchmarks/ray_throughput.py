"""Evaluation throughput of the search: the local executor against a local Ray cluster at 1 and 2
workers, on the default job's network (digits-resnet on scikit-learn's digits), same seed and budget.

Each setting runs the same NSGA-III search (``--generations`` × ``--population`` evaluations) into a
fresh directory and reports evaluations per second of wall time, and whether its front equals the
local executor's (it must: the search is deterministic given its seed).

    python benchmarks/ray_throughput.py [--generations 4] [--population 16] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_common import command_line, write_result

from edgeprune.config import DataConfig, ModelConfig
from edgeprune.search.config import SearchConfig
from edgeprune.search.evaluator import EvaluatorSpec
from edgeprune.search.run import run_search

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ray_throughput.json")
    args = ap.parse_args()
    import ray
    import torch

    from edgeprune.models import build_model

    # one set of weights for every process (an unseeded init would differ between Ray workers)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        weights = Path(tempfile.mkdtemp()) / "digits.pt"
        torch.save(build_model(ModelConfig(name="digits-resnet")).model.state_dict(), weights)

    def spec(executor: str, workers: int) -> EvaluatorSpec:
        search = SearchConfig(
            generations=args.generations, population=args.population, seed=args.seed, val_size=200,
            calib_batches=2, batch_size=64, executor=executor, workers=workers,
        )  # fmt: skip
        return EvaluatorSpec(
            ModelConfig(name="digits-resnet"), DataConfig(source="digits"), "host-cpu", search
        )

    rows, fronts = [], {}
    for executor, workers in (("local", 1), ("ray", 1), ("ray", 2)):
        if executor == "ray":
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            start = time.perf_counter()
            result = run_search(spec(executor, workers), Path(tempfile.mkdtemp()) / "search")
            wall = time.perf_counter() - start
        finally:
            if executor == "ray":
                ray.shutdown()
        front = sorted(result.candidates[i].plan.key() for i in result.front)
        fronts[(executor, workers)] = front
        rows.append({
            "executor": executor, "workers": workers, "evaluations": result.n_evals, "wall_s": round(wall, 2),
            "evals_per_s": round(result.n_evals / wall, 3), "front_equals_local": front == fronts[("local", 1)],
        })  # fmt: skip
        print(f"{executor:6s} workers {workers}: {result.n_evals} evaluations in {wall:6.1f} s "
              f"= {result.n_evals / wall:.2f}/s; front equals local: {front == fronts[('local', 1)]}", flush=True)  # fmt: skip
    payload = {"command": command_line(__file__, args), "results": rows,
               "note": "wall time includes starting the workers (Ray actors load model and data once each)"}  # fmt: skip
    print(f"wrote {write_result(args.out, payload)}")


if __name__ == "__main__":
    main()
