"""Latency fidelity: the host-cpu table's predictions against end-to-end ONNX Runtime measurements.

For N random pruned networks of two families — CIFAR ResNet-56 (stage widths, per-block inner widths
at the profile's channel multiple, identity blocks dropped) and torchvision MobileNetV2 at 3×32×32
(depthwise convolutions; per-block expansion widths at the multiple, residual blocks dropped) — each
network is exported to ONNX and timed end to end on ONNX Runtime (1 intra-op thread, a fresh session
per network per pass, warm-up, median of the runs; minimum over passes spread in time, networks in a
shuffled order each pass). It is predicted from the table (sum of kernels + empty-call overhead) and
by a FLOPs-proportional predictor ``t = a·MACs`` fitted (least squares on relative error) to the same
measurements. Printed and written as JSON: share within ±10%, RMS % error and Kendall τ, side by side.

Needs the host-cpu table to cover both families; if it does not, run first:

    edgeprune profile --target host-cpu --model resnet56
    edgeprune profile --target host-cpu --model torchvision:mobilenet_v2 --num-classes 10 --input-shape 3,32,32

    python benchmarks/latency_fidelity.py [--n 40] [--passes 3] [--seed 0] [--out benchmarks/results/latency_fidelity.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import nn

from edgeprune.latency import extract_kernels, load_profile, predictor_for
from edgeprune.latency.enumerate import channel_levels
from edgeprune.latency.kernel_models import export_onnx
from edgeprune.latency.ort_timing import time_models_ms
from edgeprune.models.cifar_resnet import BasicBlock, CifarResNet, EmbedShortcut
from edgeprune.models.tv_compat import torchvision_models

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (3, 32, 32)


def random_resnet(depth: int, multiple: int, rng: np.random.Generator) -> nn.Module:
    """A pruned CIFAR ResNet as `graph.apply_plan` makes one: narrower streams and blocks, blocks dropped."""
    n = (depth - 2) // 6
    full = (16, 32, 64)
    widths = tuple(int(rng.choice(channel_levels(w, multiple))) for w in full)
    keep_p = rng.uniform(0.3, 1.0)
    counts = tuple(1 + int((rng.random(n - 1) < keep_p).sum()) for _ in range(3))
    model = CifarResNet(counts, num_classes=10)  # full widths, then every layer replaced at its pruned width
    model.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
    model.bn1 = nn.BatchNorm2d(widths[0])
    model.linear = nn.Linear(widths[2], 10)
    cin = widths[0]
    for s, layer in enumerate((model.layer1, model.layer2, model.layer3)):
        for i in range(len(layer)):
            stride = 2 if (s > 0 and i == 0) else 1
            mid = int(rng.choice(channel_levels(full[s], multiple)))
            w = widths[s]
            if cin > w:  # a narrowed stream: the sliced option-A embedding maps cin -> w
                block = BasicBlock(w, w, stride, mid_planes=mid)
                block.conv1 = nn.Conv2d(cin, mid, 3, stride, 1, bias=False)
                emb = EmbedShortcut(w, w, stride)
                emb.embed = torch.eye(w, cin).reshape(w, cin, 1, 1)
                block.shortcut = emb
            else:
                block = BasicBlock(cin, w, stride, mid_planes=mid)
            layer[i] = block
            cin = w
    return model.eval()


def random_mobilenet(multiple: int, rng: np.random.Generator) -> nn.Module:
    """MobileNetV2 (10 classes) with random expansion widths and residual blocks dropped."""
    tvm = torchvision_models()
    ir_cls = tvm.mobilenetv2.InvertedResidual
    model = tvm.mobilenet_v2(num_classes=10)
    keep_p = rng.uniform(0.3, 1.0)
    features = []
    for m in model.features:
        if isinstance(m, ir_cls):
            convs = [c for c in m.conv.modules() if isinstance(c, nn.Conv2d)]
            if m.use_res_connect and rng.random() > keep_p:
                continue
            if len(convs) == 3:
                cin, hidden, cout = convs[0].in_channels, convs[0].out_channels, convs[-1].out_channels
                mid = int(rng.choice(channel_levels(hidden, multiple)))
                ratio = mid / cin if mid != cin else 1 + 1e-9  # ratio exactly 1 would drop the expansion conv
                m = ir_cls(cin, cout, convs[1].stride[0], ratio)
        features.append(m)
    model.features = nn.Sequential(*features)
    return model.eval()


def random_lowrank_resnet56(multiple: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """A maker of random ResNet-56s from the search space with rank genes: pruned, shallower, factorised."""
    from edgeprune.graph import analyze, apply_plan
    from edgeprune.models.cifar_resnet import cifar_resnet
    from edgeprune.space import SearchSpace

    model, example = cifar_resnet(56).eval(), torch.zeros(1, *SHAPE)
    analysis = analyze(model, example, multiple)
    space = SearchSpace.from_analysis(analysis, multiple, rank_genes=True)

    def make() -> nn.Module:
        plan = space.decode(space.random(rng, 1)[0])
        return apply_plan(model, plan, example, analysis=analysis)

    return make


def measure_end_to_end_ms(
    models: list[bytes], passes: int, runs: int, rng: np.random.Generator
) -> np.ndarray:
    """Min over passes (shuffled order, fresh session each) of the median of ``runs`` timed calls."""
    best = np.full(len(models), np.inf)
    for p in range(passes):
        for i in rng.permutation(len(models)):
            samples = time_models_ms([models[i]], threads=1, warmup=30, runs=runs)[0]
            best[i] = min(best[i], float(np.median(samples)))
        print(f"  pass {p + 1}/{passes} done")
    return best


def figures(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    err = pred / meas - 1.0
    return {
        "within_10pct": round(float(np.mean(np.abs(err) <= 0.10)), 3),
        "rms_pct_error": round(float(np.sqrt(np.mean(err**2)) * 100), 2),
        "kendall_tau": round(float(kendalltau(pred, meas).statistic), 3),
    }


def flops_proportional(macs: np.ndarray, meas: np.ndarray) -> np.ndarray:
    """``a·MACs`` with ``a`` minimising the squared relative error on the same data."""
    r = macs / meas
    a = float(np.sum(r) / np.sum(r * r))
    return a * macs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", default="host-cpu")
    ap.add_argument(
        "--families",
        default="resnet56,mobilenet_v2",
        help="also: resnet56-lowrank (rank genes, needs --ranks kernels)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latency_fidelity.json")
    args = ap.parse_args()
    profile = load_profile(args.target)
    predictor = predictor_for(profile)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)  # weights do not matter for timing; fixed for reproducible exports
    results: dict[str, dict] = {}
    start = time.time()
    makers = {
        "resnet56": lambda: random_resnet(56, profile.channel_multiple, rng),
        "mobilenet_v2": lambda: random_mobilenet(profile.channel_multiple, rng),
        "resnet56-lowrank": random_lowrank_resnet56(profile.channel_multiple, rng),
    }
    for family in args.families.split(","):
        make = makers[family]
        nets = [make() for _ in range(args.n)]
        keys = [extract_kernels(m, SHAPE) for m in nets]
        pred = np.array([predictor.predict_kernels_ms(k) for k in keys])
        macs = np.array([sum(k.macs for k in ks) for ks in keys], dtype=np.float64)
        onnx_models = [export_onnx(m, (1, *SHAPE)) for m in nets]
        print(
            f"{family}: {args.n} networks, {int(macs.min() / 1e6)}-{int(macs.max() / 1e6)} M MACs; measuring"
        )
        meas = measure_end_to_end_ms(onnx_models, args.passes, args.runs, rng)
        flops = flops_proportional(macs, meas)
        results[family] = {
            "n": args.n,
            "table": figures(pred, meas),
            "flops_proportional": figures(flops, meas),
            "measured_ms": {"min": round(float(meas.min()), 4), "max": round(float(meas.max()), 4)},
            "per_network": [
                {"macs": int(m), "measured_ms": round(float(t), 5), "predicted_ms": round(float(p), 5)}
                for m, t, p in zip(macs, meas, pred, strict=True)
            ],
        }
    print(f"\n{'family':14s} {'predictor':20s} {'within ±10%':>12s} {'RMS %':>8s} {'Kendall τ':>10s}")
    for family, r in results.items():
        for name in ("table", "flops_proportional"):
            f = r[name]
            print(
                f"{family:14s} {name:20s} {f['within_10pct']:12.1%} {f['rms_pct_error']:8.2f} {f['kendall_tau']:10.3f}"
            )
    payload = {
        "command": "python benchmarks/latency_fidelity.py "
        + " ".join(
            f"--{k} {v}"
            for k, v in (
                ("n", args.n),
                ("passes", args.passes),
                ("runs", args.runs),
                ("seed", args.seed),
                ("families", args.families),
            )
        ),
        "target": profile.name,
        "table_source": predictor.source,
        "elapsed_s": round(time.time() - start, 1),
        "bar": {"within_10pct": 0.9, "kendall_tau": 0.9, "better_than_flops_on_every_figure": True},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
