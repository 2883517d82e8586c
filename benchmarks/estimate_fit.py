"""Fit the roofline efficiency factors of the estimate profiles to published on-device latencies.

Data: HW-NAS-Bench's FBNet per-block lookup table (``../shared/data/latency/fbnet_cached_metrics.json``):
Jetson TX2 GPU (``edgegpu``), Raspberry Pi 4 (``raspi4``, Cortex-A72) and Pixel 3 (``pixel3``,
Snapdragon 845). Each block is expanded into its convolutions (:class:`edgeprune.latency.ConvSpec`)
and timed by ``t = Σ max(2·MACs/(peak·eff_c), bytes/(bw·eff_m)) + n_convs·overhead``; the three
factors are fitted by least squares on log latency. Hold-out evaluation:

* within a device: fit on a seeded random 70% of the blocks, score the other 30%;
* across devices (ARM CPU class): fit on raspi4, predict pixel3 from pixel3's own stated figures.

Then the factors fitted on all blocks of the class's device(s) are written into
``hw_profiles/{jetson-orin,desktop-gpu,mobile-cpu}.yaml`` with the cited figures of the target device.
The packaged profiles never need ../shared at run time.

    python benchmarks/estimate_fit.py [--data ../shared/data] [--write]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import least_squares
from scipy.stats import kendalltau

from edgeprune.latency.kernels import ConvSpec

ROOT = Path(__file__).resolve().parents[1]

# Stated figures of the devices the published measurements come from (FP32; see citations).
SOURCES = {
    "edgegpu": {
        "peak_gflops": 665.6,  # 256 Pascal CUDA cores x 1.3 GHz x 2 FLOP (FMA)
        "bandwidth_gbps": 59.7,  # 128-bit LPDDR4-1866
        "cite": "NVIDIA Jetson TX2 module datasheet: 256-core Pascal GPU up to 1.3 GHz, 8 GB 128-bit LPDDR4 59.7 GB/s",
    },
    "raspi4": {
        "peak_gflops": 48.0,  # 4 x Cortex-A72 x 1.5 GHz x 8 FLOP/cycle (128-bit NEON FMA)
        "bandwidth_gbps": 12.8,  # 32-bit LPDDR4-3200
        "cite": "Raspberry Pi 4 Model B product brief: BCM2711 4x Cortex-A72 @ 1.5 GHz, LPDDR4-3200 (32-bit bus: 12.8 GB/s)",
    },
    "pixel3": {
        "peak_gflops": 89.6,  # 4 x Kryo 385 Gold (Cortex-A75) x 2.8 GHz x 8 FLOP/cycle
        "bandwidth_gbps": 29.9,  # 4 x 16-bit LPDDR4X-1866
        "cite": "Qualcomm Snapdragon 845 product brief: 4x Kryo 385 Gold @ 2.8 GHz, LPDDR4X 1866 MHz 4x16-bit (29.9 GB/s)",
    },
}

# Targets and their stated figures; the efficiency factors come from the class's fit.
TARGETS = {
    "jetson-orin": {
        "fit": ["edgegpu"],
        "description": "NVIDIA Jetson AGX Orin 64GB, TensorRT FP16, batch 1",
        "device": "NVIDIA Jetson AGX Orin 64GB (Ampere GPU, 2048 CUDA cores, 64 Tensor Cores)",
        "runtime": "tensorrt",
        "precision": "fp16",
        "threads": 1,
        "channel_multiple": 8,
        "channel_multiple_reason": "Tensor Core FP16 kernels want channel counts that are multiples of 8 (NVIDIA TensorRT performance guide)",
        "peak_gflops": 5325.0,
        "bandwidth_gbps": 204.8,
        "bytes_per_value": 2,
        "citations": [
            "NVIDIA Jetson AGX Orin Series datasheet: 2048-core Ampere GPU up to 1.3 GHz, 5.325 FP32 TFLOPS (CUDA cores; FP16 Tensor Core speed-up not credited)",
            "same: 256-bit LPDDR5 204.8 GB/s",
        ],
    },
    "desktop-gpu": {
        "fit": ["edgegpu"],
        "description": "NVIDIA GeForce RTX 3060 (desktop), TensorRT FP16, batch 1",
        "device": "NVIDIA GeForce RTX 3060 12GB (Ampere GA106, 3584 CUDA cores)",
        "runtime": "tensorrt",
        "precision": "fp16",
        "threads": 1,
        "channel_multiple": 8,
        "channel_multiple_reason": "Tensor Core FP16 kernels want channel counts that are multiples of 8 (NVIDIA TensorRT performance guide)",
        "peak_gflops": 12740.0,
        "bandwidth_gbps": 360.0,
        "bytes_per_value": 2,
        "citations": [
            "NVIDIA GeForce RTX 3060 specifications: 3584 CUDA cores, boost 1.78 GHz -> 12.74 FP32 TFLOPS (FP16 Tensor Core speed-up not credited)",
            "same: 12 GB GDDR6 15 Gbps on a 192-bit bus = 360 GB/s",
        ],
    },
    "mobile-cpu": {
        "fit": ["raspi4", "pixel3"],
        "description": "ARM Cortex-A76 class CPU (Raspberry Pi 5), ONNX Runtime FP32, 4 threads, batch 1",
        "device": "Raspberry Pi 5: Broadcom BCM2712, 4x Cortex-A76 @ 2.4 GHz",
        "runtime": "onnxruntime-cpu",
        "precision": "fp32",
        "threads": 4,
        "channel_multiple": 8,
        "channel_multiple_reason": "128-bit NEON holds 4 FP32 lanes; ONNX Runtime's ARM conv kernels block channels by 8 (MLAS NCHWc on ARM64)",
        "peak_gflops": 76.8,
        "bandwidth_gbps": 17.1,
        "bytes_per_value": 4,
        "citations": [
            "Raspberry Pi 5 product brief: BCM2712 quad-core Cortex-A76 @ 2.4 GHz (4 cores x 2.4 GHz x 8 FP32 FLOP/cycle = 76.8 GFLOP/s)",
            "same: LPDDR4X-4267 SDRAM, 32-bit bus = 17.1 GB/s",
        ],
    },
}

_NUM = re.compile(r"([A-Za-z]+)(\d+)")


def block_convs(key: str) -> list[ConvSpec] | None:
    """The convolutions of an FBNet lookup-table entry (None: no work, e.g. an identity skip)."""
    kind, *fields = key.split("_")
    f = {m.group(1): int(m.group(2)) for m in (_NUM.fullmatch(x) for x in fields) if m}
    if kind == "ConvBlock":
        h, w, ci, co, e, k, s, g = (
            f[x] for x in ("H", "W", "Cin", "Cout", "exp", "kernel", "stride", "group")
        )
        mid = ci * e
        dw = ConvSpec(h, w, mid, mid, k, s, mid)
        oh, ow = dw.out_hw
        convs = [ConvSpec(h, w, ci, mid, 1, 1, g), dw, ConvSpec(oh, ow, mid, co, 1, 1, g)]
        if g > 1:  # FBNet's grouped blocks shuffle channels after the expansion: one more memory pass
            convs.insert(1, ConvSpec(h, w, mid, mid, 1, 1, mid))
        return convs
    if kind == "Skip":
        if f["Cin"] == f["Cout"] and f["stride"] == 1:
            return None
        return [ConvSpec(f["H"], f["W"], f["Cin"], f["Cout"], 1, f["stride"], 1)]
    if kind == "ConvNorm":
        return [ConvSpec(f["H"], f["W"], f["Cin"], f["Cout"], f["kernel"], f["stride"], f["group"])]
    if kind == "AvgP":
        return [ConvSpec(f["H"], f["W"], f["Cin"], f["Cin"], 1, 1, f["Cin"])]
    if kind == "FC":
        return [ConvSpec(1, 1, f["Cin"], f["Cout"], 1, 1, 1)]
    return None


def _features(convs: list[ConvSpec], bytes_per_value: int = 4) -> tuple[np.ndarray, np.ndarray, int]:
    flops = np.array([2.0 * c.macs for c in convs])
    traffic = np.array([float(c.bytes_moved(bytes_per_value)) for c in convs])
    return flops, traffic, len(convs)


def predict_ms(params: np.ndarray, feats: list, peak_gflops: float, bw_gbps: float) -> np.ndarray:
    eff_c, eff_m, ov = np.exp(params)
    out = []
    for flops, traffic, n in feats:
        t = np.maximum(flops / (peak_gflops * 1e9 * eff_c), traffic / (bw_gbps * 1e9 * eff_m)) * 1e3
        out.append(t.sum() + n * ov)
    return np.asarray(out)


def fit(samples: list[tuple[list, float, dict]]) -> np.ndarray:
    """Log-space least squares over (features, latency, device figures) triples."""

    def resid(p: np.ndarray) -> np.ndarray:
        return np.array(
            [
                np.log(predict_ms(p, [f], d["peak_gflops"], d["bandwidth_gbps"])[0]) - np.log(y)
                for f, y, d in samples
            ]
        )

    res = least_squares(
        resid, x0=np.log([0.3, 0.5, 0.01]), bounds=(np.log([1e-4, 1e-4, 1e-6]), np.log([1.5, 1.5, 10.0]))
    )
    return res.x


def score(params: np.ndarray, samples: list[tuple[list, float, dict]]) -> dict[str, float]:
    pred = np.array(
        [predict_ms(params, [f], d["peak_gflops"], d["bandwidth_gbps"])[0] for f, _, d in samples]
    )
    y = np.array([s[1] for s in samples])
    err = pred / y - 1.0
    tau = kendalltau(pred, y).statistic
    return {
        "n": len(y),
        "median_abs_pct_err": round(float(np.median(np.abs(err)) * 100), 1),
        "within_25pct": round(float(np.mean(np.abs(err) <= 0.25)), 3),
        "within_50pct": round(float(np.mean(np.abs(err) <= 0.5)), 3),
        "kendall_tau": round(float(tau), 3),
    }


def device_samples(data: dict, device: str) -> list[tuple[list, float, dict]]:
    out = []
    for key, y in data[f"{device}_latency"].items():
        convs = block_convs(key)
        if convs is None or y <= 0:
            continue
        out.append((_features(convs), float(y), SOURCES[device]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    ap.add_argument("--write", action="store_true", help="write the fitted profiles into hw_profiles/")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "estimate_fit.json")
    args = ap.parse_args()
    data = json.loads((args.data / "latency" / "fbnet_cached_metrics.json").read_text())
    rng = np.random.default_rng(args.seed)
    report: dict[str, dict] = {}
    per_device = {d: device_samples(data, d) for d in SOURCES}
    for device, samples in per_device.items():
        idx = rng.permutation(len(samples))
        cut = int(0.7 * len(samples))
        train = [samples[i] for i in idx[:cut]]
        test = [samples[i] for i in idx[cut:]]
        p = fit(train)
        report[f"{device}: 70/30 hold-out"] = {"train": score(p, train), "holdout": score(p, test)}
    p = fit(per_device["raspi4"])
    report["raspi4 -> pixel3 (cross-device)"] = {"holdout": score(p, per_device["pixel3"])}
    print(f"{'evaluation':40s} {'n':>4s} {'med|err|%':>9s} {'±25%':>6s} {'±50%':>6s} {'tau':>6s}")
    for name, r in report.items():
        h = r["holdout"]
        print(
            f"{name:40s} {h['n']:4d} {h['median_abs_pct_err']:9.1f} {h['within_25pct']:6.2f} {h['within_50pct']:6.2f} {h['kendall_tau']:6.3f}"
        )
    fitted: dict[str, dict] = {}
    for target, spec in TARGETS.items():
        samples = [s for d in spec["fit"] for s in per_device[d]]
        p = fit(samples)
        eff_c, eff_m, ov = (float(v) for v in np.exp(p))
        key = " + ".join(spec["fit"])
        holdout = {k: float(v) for k, v in report[f"{spec['fit'][0]}: 70/30 hold-out"]["holdout"].items()}
        if len(spec["fit"]) > 1:
            holdout.update(
                {
                    f"cross_device_{k}": float(v)
                    for k, v in report["raspi4 -> pixel3 (cross-device)"]["holdout"].items()
                }
            )
        fitted[target] = {
            "compute_efficiency": eff_c,
            "memory_efficiency": eff_m,
            "kernel_overhead_ms": ov,
            "fit_all": score(p, samples),
        }
        if args.write:
            profile = {
                "version": 1,
                "name": target,
                "description": spec["description"],
                "device": spec["device"],
                "runtime": spec["runtime"],
                "precision": spec["precision"],
                "threads": spec["threads"],
                "batch_size": 1,
                "channel_multiple": spec["channel_multiple"],
                "channel_multiple_reason": spec["channel_multiple_reason"],
                "estimate": {
                    "source": "estimate",
                    "method": (
                        "per-convolution roofline max(2*MACs/(peak*eff_c), bytes/(bandwidth*eff_m)) + overhead per conv, "
                        "efficiencies fitted (log least squares) to published on-device block latencies; "
                        "generated by benchmarks/estimate_fit.py"
                    ),
                    "peak_gflops": spec["peak_gflops"],
                    "bandwidth_gbps": spec["bandwidth_gbps"],
                    "bytes_per_value": spec["bytes_per_value"],
                    "compute_efficiency": round(eff_c, 5),
                    "memory_efficiency": round(eff_m, 5),
                    "kernel_overhead_ms": round(ov, 6),
                    "call_overhead_ms": round(ov, 6),
                    "citations": spec["citations"] + [SOURCES[d]["cite"] for d in spec["fit"]],
                    "fitted_to": f"HW-NAS-Bench FBNet block latencies on {key} ({sum(len(per_device[d]) for d in spec['fit'])} blocks, "
                    "via github.com/fracapuano/sim-is-more fbnet_cached_metrics.json)",
                    "holdout": {k: round(v, 3) for k, v in holdout.items()},
                },
            }
            header = (
                f"# {target}: ESTIMATE (no device here). Generated by benchmarks/estimate_fit.py --write; do not edit by hand.\n"
                f"# Measure it on the device: edgeprune profile --target {target} (or via edgeprune agent + --remote).\n"
            )
            (ROOT / "hw_profiles" / f"{target}.yaml").write_text(
                header + yaml.safe_dump(profile, sort_keys=False, width=200)
            )
    print(json.dumps(fitted, indent=1))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"evaluations": report, "fitted": fitted}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
