"""Which probe sees when whole networks run slow? (the profiler's quiet watch, edgeprune.latency.quiet)

Round after round, each candidate probe and a few networks of one family (the unpruned network and
two of its search space, sized about a third and two thirds of it) are timed one after another, each
in a fresh ONNX Runtime session as the profiler times them (``--runs`` calls after 30 warm-up calls,
the median kept), through four phases of ``--seconds`` each: nothing else running, a contender
process copying 256 MiB arrays (memory bandwidth), one copying 16 MiB arrays (the shared cache),
nothing again. Each series is divided by its own best; the benchmark reports each series' mean
slowdown per phase, and for each probe the correlation of its slowdown with each network's and how
many of the rounds where a network ran ``--slow`` or more over its best the probe flagged (slowdown
above the watch's tolerance) — and how many other rounds it flagged needlessly.

Probes: the watch's own (``compute``: a 3×3 convolution in cache) and candidates beside it: batch-1
linear layers whose 4 and 8 MiB of weights exceed a core's L2 on the machines this was written on
(``stream``: they stream their weights from the shared cache, as a network's 1×1 convolutions at
small resolution do), and a 1×1 convolution with large activations.

Measured on a 2-core Intel Xeon with MobileNetV3-small@48 at 1 thread (``quiet_probes_mbv3_t1.json``),
the streaming probes felt the contenders less than the 3×3 probe did (``stream``, 4 MiB: 1.19× its best with
nothing running, 1.24× beside the 256 MiB copy; 3×3: 1.27× → 1.42×; the networks 1.27–1.49× →
1.36–1.68×), and every probe correlated only 0.22–0.47 with the networks sample by sample: a second,
streaming probe would not tell the profiler more, so the watch kept its one probe.

    python benchmarks/quiet_probes.py --family torchvision:mobilenet_v3_small@48 --seconds 45
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import torch
from bench_common import command_line, write_result
from latency_fidelity import parse_family, sample_space

from edgeprune.config import ModelConfig
from edgeprune.latency import load_profile
from edgeprune.latency.kernel_models import export_onnx, kernel_models
from edgeprune.latency.kernels import KernelKey
from edgeprune.latency.quiet import PROBE_KEY, QUIET_TOLERANCE
from edgeprune.latency.timing import time_models_ms
from edgeprune.models import build_model

ROOT = Path(__file__).resolve().parents[1]


# the watch's probe, and candidates beside it
CANDIDATES = {
    "compute": PROBE_KEY,
    "stream": KernelKey("linear", 1, 1, 1024, 0, 1024, 1, 1, 1, "", "fp32"),
    "stream 8 MiB": KernelKey("linear", 1, 1, 1024, 0, 2048, 1, 1, 1, "", "fp32"),
    "1x1 h28 c64-256": KernelKey("conv", 28, 28, 64, 0, 256, 1, 1, 1, "", "fp32"),
}
PHASES = {"none": 0, "copying 256 MiB": 256, "copying 16 MiB": 16, "none again": 0}


def _copy_forever(mib: int) -> None:
    """The contender: copy an array of ``mib`` MiB back and forth until killed."""
    a = np.ones(mib * 2**18, dtype=np.float32)
    b = np.empty_like(a)
    while True:
        np.copyto(b, a)
        np.copyto(a, b)


def _networks(spec: str, multiple: int, seed: int) -> dict[str, bytes]:
    name, shape = parse_family(spec)
    loaded = build_model(ModelConfig(name=name, num_classes=10))
    shape = shape or loaded.input_shape or (3, 32, 32)
    nets = sample_space(loaded.model, shape, multiple, np.random.default_rng(seed), 24)
    full = sum(p.numel() for p in loaded.model.parameters())
    sizes = np.array([sum(p.numel() for p in n.parameters()) for n in nets])
    out = {f"unpruned ({full / 1e3:.0f}k weights)": export_onnx(loaded.model, (1, *shape))}
    for frac in (1 / 3, 2 / 3):
        i = int(np.argmin(np.abs(sizes - frac * full)))
        out[f"pruned ({sizes[i] / 1e3:.0f}k weights)"] = export_onnx(nets[i], (1, *shape))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="torchvision:mobilenet_v3_small@48")
    ap.add_argument("--target", default="host-cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=45.0, help="per phase")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--slow", type=float, default=1.10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "quiet_probes.json")
    args = ap.parse_args()
    if args.seconds <= 0 or args.runs <= 0:
        ap.error("--seconds and --runs must be positive")
    torch.manual_seed(args.seed)
    profile = load_profile(args.target)
    probes = {name: kernel_models(key)[1] for name, key in CANDIDATES.items()}
    nets = _networks(args.family, profile.channel_multiple, args.seed)
    series: dict[str, list[float]] = {n: [] for n in [*probes, *nets]}
    models = {**probes, **nets}
    load = [round(v, 2) for v in os.getloadavg()]
    phase_of: list[str] = []
    t0 = time.monotonic()
    spawn = multiprocessing.get_context("spawn")
    for phase, mib in PHASES.items():
        contender = spawn.Process(target=_copy_forever, args=(mib,), daemon=True) if mib else None
        if contender is not None:
            contender.start()
            time.sleep(1.0)  # its arrays allocated and copying
        try:
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                for name, model in models.items():
                    ms = time_models_ms([model], threads=args.threads, warmup=30, runs=args.runs)[0]
                    series[name].append(float(np.median(ms)))
                phase_of.append(phase)
        finally:
            if contender is not None:
                contender.kill()
                contender.join()
        print(f"phase {phase!r} done", flush=True)
    ratio = {n: np.array(s) / min(s) for n, s in series.items()}
    rounds = len(phase_of)
    print(f"{rounds} rounds in {time.monotonic() - t0:.0f} s", flush=True)
    in_phase = {ph: np.array([p == ph for p in phase_of]) for ph in PHASES}
    by_phase = {
        n: {ph: round(float(r[m].mean()), 3) for ph, m in in_phase.items() if m.any()}
        for n, r in ratio.items()
    }
    for n, row in by_phase.items():
        print(f"{n:28s} " + "  ".join(f"{ph} {v:.2f}x" for ph, v in row.items()), flush=True)
    judged: dict[str, dict] = {}
    for p in probes:
        flagged = ratio[p] > QUIET_TOLERANCE
        judged[p] = {}
        for n in nets:
            slow = ratio[n] >= args.slow
            corr = float(np.corrcoef(ratio[p], ratio[n])[0, 1]) if rounds > 2 else float("nan")
            judged[p][n] = {
                "correlation": round(corr, 3),
                "slow_rounds": int(slow.sum()),
                "slow_rounds_flagged": int((slow & flagged).sum()),
                "quiet_rounds_flagged": int((~slow & flagged).sum()),
            }
            j = judged[p][n]
            print(f"{p:8s} vs {n:26s} r={corr:+.2f}  flagged {j['slow_rounds_flagged']}/{j['slow_rounds']} slow "
                  f"rounds, {j['quiet_rounds_flagged']}/{rounds - j['slow_rounds']} quiet ones", flush=True)  # fmt: skip
    out = {
        "benchmark": "quiet_probes", "command": command_line(__file__, args), "family": args.family,
        "threads": args.threads, "rounds": rounds, "seconds_per_phase": args.seconds,
        "probes": {n: str(k) for n, k in CANDIDATES.items()}, "tolerance": QUIET_TOLERANCE,
        "best_ms": {n: round(min(s), 5) for n, s in series.items()},
        "mean_slowdown_by_phase": by_phase, "phase_of_round": phase_of,
        "slowdown_percentiles_50_90_max": {
            n: [round(float(np.percentile(r, q)), 3) for q in (50, 90, 100)] for n, r in ratio.items()
        },
        "judged": judged, "series_ms": {n: [round(v, 5) for v in s] for n, s in series.items()},
        "load_average_at_start": load, "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
    }  # fmt: skip
    write_result(args.out, out)


if __name__ == "__main__":
    main()
