"""Judge the estimate profiles against published batch-1 latencies of the devices they name, and fit them.

Data: ``published_latency.csv`` in the project's shared data (``../shared/data/latency/``): batch-1
latencies of standard CNNs on named devices, each row with its source. For every row the network is
built with torchvision (``weights=None``: shapes only, nothing downloaded; MobileNet V1, which
torchvision lacks, is built here from Howard et al. 2017, Table 1), its kernels are traced with
:func:`edgeprune.latency.extract_kernels` at the row's input size, and the row's device is timed with
the same :class:`edgeprune.latency.roofline.Roofline` the predictor uses:

    t = Σ_conv [ max(2·MACs / (peak·eff_c), bytes / (bandwidth·eff_m)) + kernel_overhead ] + call_overhead

``peak`` and ``bandwidth`` are the device's stated figures at the row's precision (``DEVICES``, each
cited: dense Tensor Core rates for FP16/INT8 TensorRT, NEON rates × the cores the row used for ARM
CPUs). ``eff_m`` is fixed at 1 (the memory roof is the stated bandwidth); ``eff_c``,
``kernel_overhead`` and ``call_overhead`` are fitted (least squares on log latency) per target.

Rows, per target (``select_row``):

* ``check``: measured on the device the target names (jetson-orin: Jetson AGX Orin; desktop-gpu:
  GeForce RTX 3060; mobile-cpu: a Cortex-A76-class CPU at the target's 4 threads), with TensorRT for
  the GPU targets, not flagged LOW TRUST by the data set. These rows fit the target and judge it:
  ``published_check`` is leave-one-network-out cross-validation — each row is estimated by a fit
  that saw no row of that network on any device — so no reported error comes from a row it was fitted on;
* ``transfer``: the same family but another device (Orin Nano, T4, L4), another thread count, or a
  low-trust harness: never fitted on, estimated with the target's fitted factors at that device's own
  figures (the profile's ``holdout``);
* ``excluded``: no cited figures for the device, no torchvision builder, or another runtime (reason given).

A target is ``ranking_only`` unless its check has n ≥ 3 rows, every held-out estimate within 2× of the
published figure (ratio in [0.5, 2]) and a median absolute error ≤ 50 % (:func:`is_ranking_only`).

    python benchmarks/estimate_fit.py [--data ../shared/data] [--write] [--out PATH]

``--write`` regenerates ``hw_profiles/{jetson-orin,desktop-gpu,mobile-cpu}.yaml``; the packaged
profiles never need ../shared at run time.
"""

from __future__ import annotations

import argparse
import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from bench_common import command_line, write_result
from scipy.optimize import least_squares
from scipy.stats import kendalltau
from torch import nn

from edgeprune.latency.kernels import ConvSpec, KernelKey, extract_kernels
from edgeprune.latency.roofline import Roofline
from edgeprune.models.tv_compat import torchvision_models

ROOT = Path(__file__).resolve().parents[1]
CSV_PATH = Path("latency") / "published_latency.csv"
BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
MEMORY_EFFICIENCY = 1.0  # fixed: the memory roof is the stated bandwidth (not identifiable from ≤ 6 rows)
FREE = ("compute_efficiency", "kernel_overhead_ms", "call_overhead_ms")
LOWER = np.log([1e-3, 1e-7, 1e-7])
UPPER = np.log([1.5, 10.0, 1000.0])
CHECK_KEYS = ("n", "median_abs_pct_err", "max_abs_pct_err", "kendall_tau", "within_2x")


# --- devices: stated figures only ------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """A device's stated figures. GPUs: ``peak_gflops`` per precision for the whole chip; CPUs:
    ``core_ghz`` (big cores, fastest first) × ``flop_per_cycle`` per precision and core."""

    key: str
    name: str
    pattern: str  # regex on the lower-cased ``device`` column
    bandwidth_gbps: float
    citations: tuple[str, ...]
    target: str | None = None  # the estimate target that names this device (class)
    peak_gflops: dict[str, float] = field(default_factory=dict)
    core_ghz: tuple[float, ...] = ()
    flop_per_cycle: dict[str, int] = field(default_factory=dict)

    @property
    def is_cpu(self) -> bool:
        return bool(self.core_ghz)

    def peak(self, precision: str, threads: int | None = None) -> float | None:
        """Peak GFLOP/s at ``precision`` (CPU: on the ``threads`` fastest big cores)."""
        if not self.is_cpu:
            return self.peak_gflops.get(precision)
        per_cycle = self.flop_per_cycle.get(precision)
        if per_cycle is None:
            return None
        n = len(self.core_ghz) if threads is None else min(threads, len(self.core_ghz))
        return round(sum(self.core_ghz[:n]) * per_cycle, 3)


A76_CYCLE = {"fp32": 16, "fp16": 32}  # 2 x 128-bit NEON FMA pipes: 2 x 4 FP32 (8 FP16) lanes x 2 FLOP
A76_CITE = (
    "Arm Cortex-A76 Software Optimization Guide: ASIMD FP multiply-accumulate (FMLA, 128-bit) issues on both "
    "V pipelines, 2 per cycle -> 16 FP32 / 32 FP16 FLOP per cycle and core"
)
LPDDR4X_4X16 = 34.1  # LPDDR4X-4266 on 4 x 16-bit channels

DEVICES: tuple[Device, ...] = (
    Device(
        "agx-orin",
        "NVIDIA Jetson AGX Orin (64GB module / developer kit)",
        r"agx orin",
        204.8,
        (
            "NVIDIA Jetson AGX Orin Series Technical Brief: 2048-core Ampere GPU with 64 third-generation Tensor Cores "
            "up to 1.3 GHz, 170 sparse INT8 TOPS (GPU) -> 85 dense INT8 TOPS, FP16 at half the INT8 rate: 42.5 dense TFLOPS",
            "NVIDIA Jetson AGX Orin Series datasheet: 256-bit LPDDR5 204.8 GB/s",
        ),
        target="jetson-orin",
        peak_gflops={"fp16": 42500.0, "int8": 85000.0},
    ),
    Device(
        "orin-nano",
        "NVIDIA Jetson Orin Nano 8GB (JetPack 6.0 clocks)",
        r"orin nano",
        68.0,
        (
            "NVIDIA Jetson Orin Nano Series datasheet: 8GB module 40 sparse INT8 TOPS -> 20 dense, FP16 10 dense TFLOPS "
            "(1024-core Ampere GPU, 32 Tensor Cores, 625 MHz); 128-bit LPDDR5 68 GB/s (memory size of the rows not stated: 8GB assumed)",
        ),
        peak_gflops={"fp16": 10000.0, "int8": 20000.0},
    ),
    Device(
        "rtx-3060",
        "NVIDIA GeForce RTX 3060 12GB",
        r"rtx 3060",
        360.0,
        (
            "NVIDIA GeForce RTX 3060 specifications: 3584 CUDA cores (28 SMs), boost 1.78 GHz; "
            "NVIDIA Ampere GA102 whitepaper (GA10x SM: 4 third-generation Tensor Cores, 512 dense FP16 FLOP/clock with FP32 "
            "accumulate on GeForce parts) -> 28 x 512 x 1.777 GHz = 25.5 dense FP16 Tensor TFLOPS (51 with FP16 accumulate)",
            "same: 12 GB GDDR6 15 Gbps on a 192-bit bus = 360 GB/s",
        ),
        target="desktop-gpu",
        peak_gflops={"fp16": 25500.0},
    ),
    Device(
        "t4",
        "NVIDIA Tesla T4",
        r"tesla t4",
        320.0,
        ("NVIDIA T4 datasheet: 65 FP16 Tensor TFLOPS (mixed precision), 130 INT8 TOPS, GDDR6 320 GB/s",),
        peak_gflops={"fp16": 65000.0, "int8": 130000.0},
    ),
    Device(
        "l4",
        "NVIDIA L4",
        r"\bl4\b",
        300.0,
        (
            "NVIDIA L4 datasheet: FP16 Tensor 242 TFLOPS and INT8 485 TOPS with sparsity -> 121 / 242.5 dense; "
            "GDDR6 300 GB/s",
        ),
        peak_gflops={"fp16": 121000.0, "int8": 242500.0},
    ),
    Device(
        "sd855plus",
        "Qualcomm Snapdragon 855+ (big cores: 1 x 2.96 + 3 x 2.42 GHz Cortex-A76-class)",
        r"snapdragon 855\+",
        LPDDR4X_4X16,
        (
            "Qualcomm Snapdragon 855+ product brief: Kryo 485 prime core 2.96 GHz, 3 performance cores 2.42 GHz; "
            "LPDDR4X 2133 MHz, 4 x 16-bit = 34.1 GB/s",
            A76_CITE,
        ),
        target="mobile-cpu",
        core_ghz=(2.96, 2.42, 2.42, 2.42),
        flop_per_cycle=A76_CYCLE,
    ),
    Device(
        "sd855-pixel4",
        "Google Pixel 4, Qualcomm Snapdragon 855 (big cores: 1 x 2.84 + 3 x 2.42 GHz)",
        r"pixel 4",
        LPDDR4X_4X16,
        (
            "Qualcomm Snapdragon 855 product brief: Kryo 485 1 x 2.84 GHz + 3 x 2.42 GHz; LPDDR4X 2133 MHz, 4 x 16-bit = 34.1 GB/s",
            A76_CITE,
        ),
        target="mobile-cpu",
        core_ghz=(2.84, 2.42, 2.42, 2.42),
        flop_per_cycle=A76_CYCLE,
    ),
    Device(
        "kirin990",
        "HiSilicon Kirin 990 (big cores: 2 x 2.86 + 2 x 2.09 GHz Cortex-A76)",
        r"kirin 990",
        LPDDR4X_4X16,
        (
            "HiSilicon Kirin 990 (4G) specifications: 2 x Cortex-A76 2.86 GHz + 2 x Cortex-A76 2.09 GHz; "
            "LPDDR4X-4266, 4 x 16-bit = 34.1 GB/s",
            A76_CITE,
        ),
        target="mobile-cpu",
        core_ghz=(2.86, 2.86, 2.09, 2.09),
        flop_per_cycle=A76_CYCLE,
    ),
    Device(
        "rpi5",
        "Raspberry Pi 5: Broadcom BCM2712, 4 x Cortex-A76 @ 2.4 GHz",
        r"raspberry pi 5",
        17.1,
        (
            "Raspberry Pi 5 product brief: BCM2712 quad-core Cortex-A76 @ 2.4 GHz (4 x 2.4 GHz x 16 FP32 FLOP/cycle = 153.6 GFLOP/s)",
            "same: LPDDR4X-4267 SDRAM, 32-bit bus = 17.1 GB/s",
            A76_CITE,
        ),
        target="mobile-cpu",
        core_ghz=(2.4, 2.4, 2.4, 2.4),
        flop_per_cycle=A76_CYCLE,
    ),
)
DEVICE_BY_KEY = {d.key: d for d in DEVICES}

# Targets: what each profile says about itself, and the device (class) it names.
TARGETS: dict[str, dict[str, Any]] = {
    "jetson-orin": {
        "device_key": "agx-orin",
        "description": "NVIDIA Jetson AGX Orin 64GB, TensorRT FP16, batch 1",
        "device": "NVIDIA Jetson AGX Orin 64GB (Ampere GPU, 2048 CUDA cores, 64 Tensor Cores)",
        "runtime": "tensorrt",
        "precision": "fp16",
        "threads": 1,
        "channel_multiple": 8,
        "channel_multiple_reason": "Tensor Core FP16 kernels want channel counts that are multiples of 8 (NVIDIA TensorRT performance guide)",
        "named": "Jetson AGX Orin, TensorRT",
    },
    "desktop-gpu": {
        "device_key": "rtx-3060",
        "description": "NVIDIA GeForce RTX 3060 (desktop), TensorRT FP16, batch 1",
        "device": "NVIDIA GeForce RTX 3060 12GB (Ampere GA106, 3584 CUDA cores, 112 Tensor Cores)",
        "runtime": "tensorrt",
        "precision": "fp16",
        "threads": 1,
        "channel_multiple": 8,
        "channel_multiple_reason": "Tensor Core FP16 kernels want channel counts that are multiples of 8 (NVIDIA TensorRT performance guide)",
        "named": "GeForce RTX 3060, TensorRT",
    },
    "mobile-cpu": {
        "device_key": "rpi5",
        "description": "ARM Cortex-A76 class CPU (Raspberry Pi 5), ONNX Runtime FP32, 4 threads, batch 1",
        "device": "Raspberry Pi 5: Broadcom BCM2712, 4x Cortex-A76 @ 2.4 GHz",
        "runtime": "onnxruntime-cpu",
        "precision": "fp32",
        "threads": 4,
        "channel_multiple": 8,
        "channel_multiple_reason": "128-bit NEON holds 4 FP32 lanes; ONNX Runtime's ARM conv kernels block channels by 8 (MLAS NCHWc on ARM64)",
        "named": "Cortex-A76-class CPUs (Raspberry Pi 5, Snapdragon 855/855+, Kirin 990) at 4 threads",
    },
}


# --- networks ----------------------------------------------------------------------------------------


def mobilenet_v1(num_classes: int = 1000) -> nn.Module:
    """MobileNet V1 1.0 (Howard et al. 2017, Table 1): torchvision has none."""

    def cbr(cin: int, cout: int, stride: int, groups: int = 1, k: int = 3) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]

    layers = cbr(3, 32, 2)
    cin = 32
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]
    for cout, stride in plan:
        layers += cbr(cin, cin, stride, groups=cin) + cbr(cin, cout, 1, k=1)
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, num_classes))


# (regex on the lower-cased network column, builder name or None, note)
NETWORKS: tuple[tuple[str, str | None, str], ...] = (
    (r"se-resnet", None, "SE-ResNet-50 has no torchvision builder"),
    (r"resnet-?101", "resnet101", ""),
    (r"resnet(-v2)?-?50", "resnet50", ""),
    (r"resnet-?34", "resnet34", ""),
    (r"resnet-?18", "resnet18", ""),
    (r"mobilenet[ _-]?v3[ _-]?large", "mobilenet_v3_large", ""),
    (r"mobilenet[ _-]?v2", "mobilenet_v2", ""),
    (r"mobilenet[ _-]?v1", "mobilenet_v1", "built here (torchvision has no MobileNet V1)"),
    (r"efficientnet[ _-]?b0", "efficientnet_b0", ""),
    (r"shufflenet[ _-]?v2", "shufflenet_v2_x1_0", "width 1.0x"),
    (r"squeezenet1_1", "squeezenet1_1", ""),
)


def network_of(name: str) -> tuple[str | None, str]:
    low = name.lower()
    for pattern, builder, note in NETWORKS:
        if re.search(pattern, low):
            notes = [note] if note else []
            if "caffe" in low:
                notes.append(
                    "Caffe-style ResNet-50 timed with torchvision's v1.5 conv shapes (4.09 vs 3.86 GMACs)"
                )
            if "v2-50" in low:
                notes.append("pre-activation ResNet-50: the same conv shapes as torchvision's")
            return builder, "; ".join(notes)
    return None, "no torchvision builder for this network"


@cache
def kernels_of(builder: str, num_classes: int, size: int) -> tuple[KernelKey, ...]:
    """The kernels of a torchvision network at 3×size×size (CPU, shapes only, no weights downloaded)."""
    if builder == "mobilenet_v1":
        model = mobilenet_v1(num_classes)
    else:
        model = getattr(torchvision_models(), builder)(weights=None, num_classes=num_classes)
    return tuple(extract_kernels(model, (3, size, size)))


def convs_of(builder: str, num_classes: int, size: int) -> list[ConvSpec]:
    return [c for k in kernels_of(builder, num_classes, size) for c in k.convs()]


# --- rows ----------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One CSV row, as this script reads it."""

    index: int
    csv: dict[str, str]
    target: str | None = None
    role: str = "excluded"  # check | transfer | excluded
    reason: str = ""
    builder: str | None = None
    num_classes: int = 1000
    size: int = 224
    device: Device | None = None
    precision: str = ""
    threads: int | None = None
    notes: list[str] = field(default_factory=list)
    estimate_ms: float | None = None
    fold: str = ""

    @property
    def published_ms(self) -> float:
        return float(self.csv["latency_ms"])

    @property
    def ratio(self) -> float | None:
        return None if self.estimate_ms is None else self.estimate_ms / self.published_ms

    @property
    def peak(self) -> float | None:
        assert self.device is not None
        return self.device.peak(self.precision, self.threads)


def compute_precision(row: dict[str, str]) -> tuple[str, str]:
    """The precision the row's device computed in, and a note when it is inferred rather than stated."""
    p, runtime = row["precision"].lower(), row["runtime"].lower()
    if "int8" in p:
        return "int8", ""
    if "tflite" in runtime and "fp16 tflite model" in p:
        return "fp32", "float16 TFLite model: TFLite's CPU path dequantises the weights and computes in FP32"
    if p.startswith("fp16"):
        return "fp16", ""
    if re.search(r"(likely|=) fp16 (storage\+)?arith", p):
        return "fp16", "FP16 arithmetic, as the row's precision column infers (ncnn's default on ARMv8.2)"
    if p.startswith("fp32"):
        return "fp32", ""
    return "", "precision not understood"


def select_row(index: int, raw: dict[str, str]) -> Row:
    """Which target a row speaks for, and whether it checks it, only transfers to it, or is left out."""
    row = Row(index, raw)
    low_device = raw["device"].lower()
    row.device = next((d for d in DEVICES if re.search(d.pattern, low_device)), None)
    if row.device is not None and row.device.target is not None:
        row.target = row.device.target
    elif raw["device_kind"] in TARGETS:
        row.target = raw["device_kind"]
    row.builder, net_note = network_of(raw["network"])
    if net_note:
        row.notes.append(net_note)
    size = re.search(r"(\d+)x(\d+)", raw["input"])
    row.size = int(size.group(1)) if size else 224
    if not size:
        row.notes.append("input size not stated: 224 assumed")
    row.num_classes = 3 if "3-class" in raw["input"] else 1000
    row.precision, note = compute_precision(raw)
    if note:
        row.notes.append(note)
    if row.target is None:
        row.reason = f"device kind {raw['device_kind']} is no estimate target"
        return row
    if TARGETS[row.target]["runtime"] == "tensorrt" and "tensorrt" not in raw["runtime"].lower():
        row.reason = "runtime is not TensorRT"
        return row
    if row.device is None:
        row.reason = "no cited figures for this device here (not the named device or class)"
        return row
    if row.builder is None:
        row.reason = net_note
        return row
    if row.device.is_cpu:
        threads = re.match(r"\d+", raw["threads"].strip())
        row.threads = int(threads.group()) if threads else len(row.device.core_ghz)
        if not threads:
            row.notes.append(f"threads not stated: all {len(row.device.core_ghz)} big cores assumed")
    if row.peak is None:
        row.reason = f"no stated {row.precision or 'unknown'} peak for {row.device.key}"
        return row
    spec = TARGETS[row.target]
    if "LOW TRUST" in raw["note"]:
        row.role, row.reason = "transfer", "the data set flags this harness LOW TRUST (outlier check only)"
    elif row.device.target != row.target:
        row.role, row.reason = "transfer", f"another device than the one {row.target} names"
    elif row.device.is_cpu and row.threads != spec["threads"]:
        row.role, row.reason = "transfer", f"{row.threads} thread(s); the target runs {spec['threads']}"
    else:
        row.role = "check"
    return row


def read_rows(data: Path) -> list[Row]:
    with (data / CSV_PATH).open(newline="") as fh:
        return [select_row(i, r) for i, r in enumerate(csv.DictReader(fh))]


# --- the model -----------------------------------------------------------------------------------------


def roofline_for(row: Row, params: dict[str, float]) -> Roofline:
    assert row.device is not None and row.peak is not None
    return Roofline(
        row.peak,
        row.device.bandwidth_gbps,
        params["compute_efficiency"],
        params["memory_efficiency"],
        params["kernel_overhead_ms"],
        BYTES[row.precision],
    )


def estimate_ms(row: Row, params: dict[str, float]) -> float:
    """What the predictor says for the row's network on the row's device: the same Roofline, per kernel."""
    assert row.builder is not None
    roof = roofline_for(row, params)
    kernels = kernels_of(row.builder, row.num_classes, row.size)
    return params["call_overhead_ms"] + sum(roof.convs_ms(k.convs()) for k in kernels)


@cache
def _features(
    builder: str, num_classes: int, size: int, bytes_per_value: int
) -> tuple[np.ndarray, np.ndarray]:
    convs = convs_of(builder, num_classes, size)
    flops = np.array([2.0 * c.macs for c in convs])
    traffic = np.array([float(c.bytes_moved(bytes_per_value)) for c in convs])
    return flops, traffic


def _vector_ms(row: Row) -> Callable[[np.ndarray], float]:
    """The estimate as a function of the log free parameters (fast path for the fit)."""
    assert row.builder is not None and row.device is not None and row.peak is not None
    flops, traffic = _features(row.builder, row.num_classes, row.size, BYTES[row.precision])
    compute = flops / (row.peak * 1e9) * 1e3
    memory = traffic / (row.device.bandwidth_gbps * 1e9 * MEMORY_EFFICIENCY) * 1e3
    n = len(flops)

    def f(logp: np.ndarray) -> float:
        eff_c, kov, cov = np.exp(logp)
        return float(np.maximum(compute / eff_c, memory).sum() + n * kov + cov)

    return f


def fit(rows: Sequence[Row]) -> dict[str, float]:
    """Log least squares of the free factors over ``rows`` (a few starts; the best is kept)."""
    fns = [_vector_ms(r) for r in rows]
    y = np.log([r.published_ms for r in rows])

    def resid(p: np.ndarray) -> np.ndarray:
        return np.log([f(p) for f in fns]) - y

    best = None
    for scale in (1.0, 0.1, 10.0):
        x0 = np.log([0.3, 0.005 * scale, 0.05 * scale])
        res = least_squares(resid, np.clip(x0, LOWER + 1e-9, UPPER - 1e-9), bounds=(LOWER, UPPER))
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    out = {k: float(v) for k, v in zip(FREE, np.exp(best.x), strict=True)}
    out["memory_efficiency"] = MEMORY_EFFICIENCY
    return out


def summary(rows: Sequence[Row]) -> dict[str, float]:
    """n, median and worst absolute % error, Kendall τ, fraction within 2× — of rows with an estimate."""
    rows = [r for r in rows if r.estimate_ms is not None]
    if not rows:
        return {}
    est = np.array([r.estimate_ms for r in rows], dtype=float)
    pub = np.array([r.published_ms for r in rows])
    ratio = est / pub
    err = np.abs(ratio - 1.0) * 100
    tau = float(kendalltau(est, pub).statistic) if len(rows) > 1 else float("nan")
    return {
        "n": float(len(rows)),
        "median_abs_pct_err": round(float(np.median(err)), 1),
        "max_abs_pct_err": round(float(err.max()), 1),
        "kendall_tau": round(tau, 3) if np.isfinite(tau) else 0.0,
        "within_2x": round(float(np.mean((ratio >= 0.5) & (ratio <= 2.0))), 3),
    }


def is_ranking_only(check: dict[str, float]) -> bool:
    """The rule: absolute figures only with ≥ 3 held-out rows, all within 2×, median |err| ≤ 50 %."""
    return not (
        check.get("n", 0) >= 3
        and check.get("within_2x", 0) >= 1.0
        and check.get("median_abs_pct_err", 1e9) <= 50.0
    )


def evaluate(rows: Sequence[Row], target: str) -> dict[str, Any]:
    """Leave-one-network-out on the target's check rows, the final fit on all of them, the transfer rows."""
    check = [r for r in rows if r.target == target and r.role == "check"]
    transfer = [r for r in rows if r.target == target and r.role == "transfer"]
    if len(check) < 2:
        raise SystemExit(f"{target}: {len(check)} check row(s); nothing to fit")
    for net in sorted({r.builder for r in check if r.builder}):
        params = fit([r for r in check if r.builder != net])
        for r in check:
            if r.builder == net:
                r.estimate_ms = estimate_ms(r, params)
                r.fold = f"fit without {net}"
    final = fit(check)
    for r in transfer:
        r.estimate_ms = estimate_ms(r, final)
        r.fold = "final fit (never fitted on)"
    published_check = summary(check)
    by_device: dict[str, dict[str, float]] = {}
    for key in sorted({r.device.key for r in check + transfer if r.device}):
        same = [
            r
            for r in check + transfer
            if r.device and r.device.key == key and "LOW TRUST" not in r.csv["note"]
        ]
        if len(same) >= 3:
            by_device[key] = summary(same)
    return {
        "params": final,
        "published_check": published_check,
        "ranking_only": is_ranking_only(published_check),
        "transfer": summary(transfer),
        "by_device": by_device,
        "check_rows": check,
        "transfer_rows": transfer,
    }


# --- output -------------------------------------------------------------------------------------------


def row_record(r: Row) -> dict[str, Any]:
    return {
        "row": r.index,
        "network": r.csv["network"],
        "torchvision": r.builder,
        "input": f"3x{r.size}x{r.size}",
        "num_classes": r.num_classes,
        "device": r.csv["device"],
        "device_key": r.device.key if r.device else None,
        "device_kind": r.csv["device_kind"],
        "target": r.target,
        "role": r.role,
        "reason": r.reason,
        "precision": r.precision,
        "threads": r.threads,
        "peak_gflops": r.peak if r.device and r.precision and r.builder else None,
        "published_ms": r.published_ms,
        "estimate_ms": None if r.estimate_ms is None else round(r.estimate_ms, 4),
        "ratio": None if r.ratio is None else round(r.ratio, 3),
        "fold": r.fold,
        "notes": "; ".join(r.notes),
        "source": r.csv["source"],
    }


def print_table(target: str, result: dict[str, Any]) -> None:
    print(f"\n{target}: named {TARGETS[target]['named']}")
    print(
        f"  {'role':8s} {'network':20s} {'device':14s} {'prec':5s} {'thr':>3s} {'published':>9s} {'estimate':>9s} {'ratio':>6s}"
    )
    for r in result["check_rows"] + result["transfer_rows"]:
        assert r.device is not None and r.estimate_ms is not None
        print(
            f"  {r.role:8s} {r.builder or '':20s} {r.device.key:14s} {r.precision:5s} {r.threads or '':>3} "
            f"{r.published_ms:9.3f} {r.estimate_ms:9.3f} {r.ratio:6.2f}"
        )
    named = [("check (leave-one-network-out)", result["published_check"]), ("transfer", result["transfer"])]
    for name, s in named + [(f"{k} rows (not LOW TRUST)", v) for k, v in result["by_device"].items()]:
        if s:
            print(
                f"  {name:30s} n={int(s['n'])} median |err| {s['median_abs_pct_err']:.1f} %, worst {s['max_abs_pct_err']:.1f} %, "
                f"tau {s['kendall_tau']:.3f}, within 2x {s['within_2x']:.2f}"
            )
    p = result["params"]
    print(
        f"  fitted on all check rows: eff_c {p['compute_efficiency']:.4f}, kernel overhead {p['kernel_overhead_ms'] * 1e3:.2f} us, "
        f"call overhead {p['call_overhead_ms'] * 1e3:.1f} us -> {'RANKING ONLY' if result['ranking_only'] else 'absolute'}"
    )


def profile_yaml(target: str, result: dict[str, Any]) -> str:
    spec, p = TARGETS[target], result["params"]
    device = DEVICE_BY_KEY[spec["device_key"]]
    check, rows = result["published_check"], result["check_rows"]
    peak = device.peak(spec["precision"], spec["threads"])
    devices = sorted({r.device.key for r in rows if r.device})
    cites = list(device.citations)
    for key in devices:
        cites += [c for c in DEVICE_BY_KEY[key].citations if c not in cites]
    nets = ", ".join(sorted({r.builder for r in rows if r.builder}))
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
                "per-convolution roofline max(2*MACs/(peak*eff_c), bytes/(bandwidth*eff_m)) + kernel overhead, + one call "
                f"overhead; peak = stated {spec['precision'].upper()} rate{' (dense Tensor Cores)' if not device.is_cpu else ''}, "
                "eff_m = 1, eff_c and overheads fitted (log least squares) to published batch-1 latencies of the named device; "
                "generated by benchmarks/estimate_fit.py (docs/concepts/estimates.md)"
            ),
            "peak_gflops": peak,
            "bandwidth_gbps": device.bandwidth_gbps,
            "bytes_per_value": BYTES[spec["precision"]],
            "compute_efficiency": round(p["compute_efficiency"], 5),
            "memory_efficiency": round(p["memory_efficiency"], 5),
            "kernel_overhead_ms": round(p["kernel_overhead_ms"], 6),
            "call_overhead_ms": round(p["call_overhead_ms"], 6),
            "citations": cites,
            "fitted_to": (
                f"{len(rows)} published batch-1 latencies on {spec['named']} ({nets}; devices {', '.join(devices)}) from "
                "published_latency.csv (project shared data); published_check = leave-one-network-out on those rows, "
                "holdout = rows of other devices / thread counts / low-trust harnesses, never fitted on. Replaces the "
                "earlier fit to HW-NAS-Bench FBNet block latencies (Jetson TX2, Raspberry Pi 4, Pixel 3), which was an "
                "order of magnitude slower than the named devices"
            ),
            "holdout": result["transfer"],
            "published_check": check,
            "ranking_only": result["ranking_only"],
        },
    }
    header = (
        f"# {target}: ESTIMATE (no device here). Generated by benchmarks/estimate_fit.py --write; do not edit by hand.\n"
        f"# Measure it on the device: edgeprune profile --target {target} (or via edgeprune agent + --remote).\n"
    )
    figures = (
        f"median |err| {check['median_abs_pct_err']:.1f} %, worst {check['max_abs_pct_err']:.1f} %, "
        f"{check['within_2x'] * 100:.0f} % within 2x, Kendall tau {check['kendall_tau']:.2f}, n={int(check['n'])}"
    )
    if result["ranking_only"]:
        header += (
            f"# RANKING ONLY: against published measurements of this device the estimate is not within 2x ({figures}).\n"
            "# Its figures rank networks; they are not latencies. --budget-ms is refused until edgeprune profile runs on the device.\n"
        )
    else:
        header += f"# Checked against published measurements of this device (held out): {figures}.\n"
    return header + yaml.safe_dump(profile, sort_keys=False, width=200)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path("../shared/data"), help="shared data (relative: to the repo root)"
    )
    ap.add_argument("--write", action="store_true", help="write the fitted profiles into hw_profiles/")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "estimate_fit.json")
    args = ap.parse_args()
    data = args.data if args.data.is_absolute() else ROOT / args.data
    rows = read_rows(data)
    results = {t: evaluate(rows, t) for t in TARGETS}
    for t, res in results.items():
        print_table(t, res)
    excluded = [r for r in rows if r.role == "excluded"]
    print(f"\nexcluded rows: {len(excluded)} (see the JSON for each reason)")
    command = command_line(__file__, argparse.Namespace(data=args.data)) + (" --write" if args.write else "")
    payload = {
        "command": command,
        "data": str(CSV_PATH),
        "method": (
            "t = sum over convs of [max(2*MACs/(peak*eff_c), bytes/(bandwidth*eff_m)) + kernel_overhead] + call_overhead, "
            "with the kernels of the torchvision network (weights=None) traced by extract_kernels at the row's input; "
            "peak/bandwidth = the row device's stated figures at the row's precision (devices below); eff_m fixed, "
            "eff_c and the two overheads fitted by log least squares"
        ),
        "devices": {
            d.key: {
                "name": d.name,
                "peak_gflops": d.peak_gflops or {p: d.peak(p) for p in d.flop_per_cycle},
                "bandwidth_gbps": d.bandwidth_gbps,
                "citations": list(d.citations),
            }
            for d in DEVICES
        },
        "hold_out": "leave-one-network-out over each target's check rows; transfer rows never fitted on",
        "ranking_only_rule": "ranking_only unless n >= 3, every held-out ratio in [0.5, 2] and median |err| <= 50 %",
        "memory_efficiency": MEMORY_EFFICIENCY,
        "targets": {
            t: {
                "named": TARGETS[t]["named"],
                "params": {k: round(v, 6) for k, v in res["params"].items()},
                "published_check": res["published_check"],
                "ranking_only": res["ranking_only"],
                "transfer": res["transfer"],
                "by_device_without_low_trust": res["by_device"],
            }
            for t, res in results.items()
        },
        "rows": [row_record(r) for r in rows],
    }
    print(f"wrote {write_result(args.out, payload)}")
    if args.write:
        for t, res in results.items():
            path = ROOT / "hw_profiles" / f"{t}.yaml"
            path.write_text(profile_yaml(t, res))
            print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
