"""How repeatable is an end-to-end ONNX Runtime timing, by thread count and thread spinning?

Random MobileNetV2 (32x32) networks from edgeprune's search space are each timed twice, in two
independent measurements (the fidelity benchmark's ``measure_end_to_end_ms``: ``--passes`` shuffled passes, a
fresh session per network per pass, median of ``--runs`` calls after 30 warm-up calls, minimum over
passes). One measurement judged against the other is the ceiling any latency predictor can reach
against such measurements. Configurations: 1 thread, 2 threads with ``session.intra_op.allow_spinning``
off (what edgeprune times and ships today) and 2 threads with it on (ONNX Runtime's default).

    python benchmarks/ort_repeatability.py --n 30 --passes 3 --runs 200 --seed 0
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from bench_common import command_line, write_result
from latency_fidelity import figures, measure_end_to_end_ms, sample_space

from edgeprune.config import ModelConfig
from edgeprune.latency.kernel_models import export_onnx
from edgeprune.models import build_model

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"t1": (1, False), "t2_spin_off": (2, False), "t2_spin_on": (2, True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ort_repeatability.json")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = build_model(ModelConfig(name="torchvision:mobilenet_v2", num_classes=10)).model
    nets = [
        export_onnx(m, (1, 3, 32, 32))
        for m in sample_space(model, (3, 32, 32), 8, rng, args.n, sampling="uniform")
    ]
    load = [round(v, 2) for v in os.getloadavg()]
    results = {}
    for name, (threads, spin) in CONFIGS.items():
        a, b = (
            measure_end_to_end_ms(nets, threads, args.passes, args.runs, rng, spin, quiet=True)[0]
            for _ in "ab"
        )
        results[name] = {"threads": threads, "allow_spinning": spin, "median_ms": round(float(np.median(a)), 4),
                         "range_ms": [round(float(a.min()), 4), round(float(a.max()), 4)], "repeat": figures(b, a)}  # fmt: skip
        f = results[name]["repeat"]
        print(f"{name:12s} median {results[name]['median_ms']:.4f} ms  second vs first: within 5% "
              f"{f['within_5pct']:.0%}, within 10% {f['within_10pct']:.0%}, RMS {f['rms_pct_error']:.1f}%, tau {f['kendall_tau']:.3f}", flush=True)  # fmt: skip
    out = {"benchmark": "ort_repeatability", "family": "torchvision:mobilenet_v2@32", "n": args.n,
           "load_average_at_start": load, "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
           "results": results, "command": command_line(__file__, args)}  # fmt: skip
    print(f"wrote {write_result(args.out, out)}")


if __name__ == "__main__":
    main()
