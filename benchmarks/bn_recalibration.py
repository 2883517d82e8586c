"""ResNet-56 at 30% uniform channel pruning: test accuracy with and without BatchNorm recalibration.

python benchmarks/bn_recalibration.py     # writes benchmarks/results/bn_recalibration.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from edgeprune.config import DataConfig, ModelConfig
from edgeprune.data import load_data
from edgeprune.graph import analyze, apply_plan, uniform_plan
from edgeprune.models import build_model
from edgeprune.train import evaluate_accuracy, recalibrate_bn

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared" / "data").resolve()


def main() -> None:
    t0 = time.time()
    data = load_data(DataConfig(source=str(SHARED / "cifar10")))
    model = build_model(
        ModelConfig(name="resnet56", weights=SHARED / "pretrained" / "resnet56-4bfd9763.th")
    ).model
    example = torch.zeros(1, 3, 32, 32)
    analysis = analyze(model, example, channel_multiple=1)
    plan = uniform_plan(analysis, 0.3, channel_multiple=1)
    pruned = apply_plan(model, plan, example, analysis=analysis)
    out = {
        "model": "resnet56",
        "plan": "uniform 30% of every channel group (L1), channel multiple 1",
        "params_original": sum(p.numel() for p in model.parameters()),
        "params_pruned": sum(p.numel() for p in pruned.parameters()),
        "test_acc_original": evaluate_accuracy(model, data.test.x, data.test.y),
        "test_acc_pruned_no_recalibration": evaluate_accuracy(pruned, data.test.x, data.test.y),
    }
    recalibrate_bn(pruned, data.train.x, num_batches=16, batch_size=128)
    out["test_acc_pruned_bn_recalibrated"] = evaluate_accuracy(pruned, data.test.x, data.test.y)
    out["recalibration"] = "16 batches x 128 training images (cumulative average)"
    out["seconds"] = round(time.time() - t0, 1)
    out["command"] = "python benchmarks/bn_recalibration.py"
    for k, v in out.items():
        print(f"{k}: {v}")
    path = ROOT / "benchmarks" / "results" / "bn_recalibration.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
