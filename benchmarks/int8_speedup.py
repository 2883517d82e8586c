"""INT8 on host-cpu for the pretrained ResNet-56: accuracy drop and ONNX Runtime speedup over FP32.

FP32 ONNX (opset 17, onnxslim) and INT8 (the host-cpu recipe in calibration/host-cpu.yaml: ORT static
quantization, QOperator, per-channel int8 weights, uint8 activations, MinMax on 256 seeded training
images) are evaluated on the full CIFAR-10 test set (10,000 JPEG-decoded images in ../shared/data) and
timed side by side in one process: ONNX Runtime CPU, 1 intra-op thread, batch 1, the calls of the two
models interleaved (A, B, A, B, ...), 30 warm-up calls each, ``--passes`` passes of ``--repetitions``
calls; each figure is the min over passes of the pass median. Bars (issue 6): drop <= 1 point,
speedup >= 1.5x.

    python benchmarks/int8_speedup.py [--data ../shared/data] [--passes 5] [--repetitions 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from edgeprune.config import DataConfig, ModelConfig
from edgeprune.data import load_data
from edgeprune.export import export_onnx, load_recipe, quantize_int8
from edgeprune.models import build_model
from edgeprune.runtime import get_runtime, interleaved_benchmark
from edgeprune.runtime.onnxruntime_rt import cpu_model_name

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--repetitions", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "int8_speedup.json")
    args = ap.parse_args()

    data = load_data(DataConfig(source=str(args.data / "cifar10")))
    weights = args.data / "pretrained" / "resnet56-4bfd9763.th"
    model = build_model(ModelConfig(name="resnet56", weights=weights)).model
    recipe = load_recipe("host-cpu")
    rt = get_runtime("onnxruntime-cpu", threads=1)
    x, y = data.test.x.numpy(), data.test.y.numpy()
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = Path(tmp) / "model.onnx"
        export_onnx(model, torch.zeros(1, 3, 32, 32), fp32_path)
        t0 = time.perf_counter()
        art = quantize_int8(fp32_path, data.train.x, recipe, Path(tmp) / "model.int8.onnx")
        quant_s = time.perf_counter() - t0
        fp32, int8 = rt.load(fp32_path), rt.load(art.model_path)
        l32, l8 = fp32.run(x), int8.run(x)
        one = x[:1]
        s32, s8 = interleaved_benchmark(
            [lambda: fp32.run(one), lambda: int8.run(one)],
            warmup=30,
            repetitions=args.repetitions,
            passes=args.passes,
        )
        sizes = {"fp32_bytes": fp32_path.stat().st_size, "int8_bytes": art.model_path.stat().st_size}
    acc32, acc8 = float(np.mean(l32.argmax(1) == y)), float(np.mean(l8.argmax(1) == y))
    result = {
        "command": "python benchmarks/int8_speedup.py"
        + (f" --passes {args.passes}" if args.passes != 5 else "")
        + (f" --repetitions {args.repetitions}" if args.repetitions != 200 else ""),
        "model": "resnet56 (pretrained, akamaster)",
        "test_images": len(y),
        "recipe": recipe.to_dict(),
        "accuracy_fp32": acc32,
        "accuracy_int8": acc8,
        "accuracy_drop_points": 100 * (acc32 - acc8),
        "top1_agreement": float(np.mean(l32.argmax(1) == l8.argmax(1))),
        "latency_fp32": s32.to_dict(),
        "latency_int8": s8.to_dict(),
        "speedup": s32.median_ms / s8.median_ms,
        "quantize_s": quant_s,
        **sizes,
        "environment": {**rt.info(), "cpu": cpu_model_name()},
        "bars": {"max_accuracy_drop_points": 1.0, "min_speedup": 1.5},
    }
    result["passed"] = result["accuracy_drop_points"] <= 1.0 and result["speedup"] >= 1.5
    print(f"{'':8s} {'top-1':>8s} {'median ms':>10s} {'p10':>8s} {'p90':>8s} {'bytes':>10s}")
    print(
        f"{'fp32':8s} {acc32:8.2%} {s32.median_ms:10.3f} {s32.p10_ms:8.3f} {s32.p90_ms:8.3f} {sizes['fp32_bytes']:10d}"
    )
    print(
        f"{'int8':8s} {acc8:8.2%} {s8.median_ms:10.3f} {s8.p10_ms:8.3f} {s8.p90_ms:8.3f} {sizes['int8_bytes']:10d}"
    )
    print(f"accuracy drop {result['accuracy_drop_points']:.2f} points (bar <= 1), speedup {result['speedup']:.2f}x (bar >= 1.5x), "
          f"1 thread, {args.passes} passes x {args.repetitions} interleaved calls -> {args.out}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
