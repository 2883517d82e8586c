"""Transfer mode (MO-EvoPruneDeepTL): CIFAR-10 ResNet-20 backbone -> a 6-class animal task.

The task: CIFAR-10's six animal classes (bird, cat, deer, dog, frog, horse) relabelled 0..5, every
split from CIFAR-10's ``test.npz`` (train+validation from the first 500 images of each class, test
from the last 500): the backbone was trained on all of CIFAR-10's training set, so its train images
would give an optimistic validation error to the search (a first run that used ``train_10k.npz``
for train/validation showed val error 0.11 against a test error of 0.23). Honest caveat: the six
classes are among the backbone's ten, so this is a relabelled subset of the source task, not a
domain shift.

``edgeprune compile --transfer`` runs on it (head of H hidden neurons trained on frozen features, then
NSGA-III over the backbone's pruning genes plus the head's hidden-width gene, finalize = head-only
fine-tuning, export + verify on ONNX Runtime, host-cpu). Written per pick: test accuracy, head sparsity
(kept hidden neurons / H), backbone parameters kept, latency predicted by the host-cpu table and
measured on ONNX Runtime. Reference in the same run: the pretrained 10-class network restricted to the
six animal logits (no training at all) and the unpruned transfer network.

    python benchmarks/transfer_mode.py [--data ../shared/data] [--generations 6 --population 12]

Writes ``benchmarks/results/transfer_mode.json``. The host-cpu table is copied to a temporary profiles
directory first (the head's kernel sizes are measured there, not into the repository's table).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
ANIMALS = (2, 3, 4, 5, 6, 7)


def write_animal_task(shared: Path, out: Path, per_class_train: int, per_class_test: int) -> Path:
    """train_animals.npz and test_animals.npz, labels 0..5, both from CIFAR-10's test.npz (1000 images
    per class; train from the first 500 of each class, test from the last 500): images the backbone
    never trained on, in every split."""
    if per_class_train > 500 or per_class_test > 500:
        raise SystemExit("at most 500 train and 500 test images per class")
    out.mkdir(parents=True, exist_ok=True)
    remap = np.full(10, -1)
    remap[list(ANIMALS)] = np.arange(len(ANIMALS))
    d = np.load(shared / "cifar10" / "test.npz")
    y = remap[d["y"]]
    classes = np.array([d["classes"][c] for c in ANIMALS])
    for split, start, per in (("train", 0, per_class_train), ("test", 500, per_class_test)):
        idx = np.concatenate([np.flatnonzero(y == c)[start : start + per] for c in range(len(ANIMALS))])
        np.savez(out / f"{split}_animals.npz", x=d["x"][idx], y=y[idx].astype(np.int64), classes=classes)
    return out


def _params(m: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in m.parameters()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--train-per-class", type=int, default=500)
    ap.add_argument("--test-per-class", type=int, default=500)
    ap.add_argument("--generations", type=int, default=10)
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--head-epochs", type=int, default=30)
    ap.add_argument("--finetune-epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "transfer_mode.json")
    args = ap.parse_args()

    from edgeprune.config import ModelConfig
    from edgeprune.data import load_data
    from edgeprune.export.manifest import read_manifest
    from edgeprune.latency import load_profile
    from edgeprune.models import build_model
    from edgeprune.pipeline import compile_run
    from edgeprune.pipeline_config import CompileConfig
    from edgeprune.progress import Reporter
    from edgeprune.train import evaluate_accuracy
    from edgeprune.verify.rebuild import rebuild_torch_model

    shared = args.data.resolve()
    weights = shared / "pretrained" / "resnet20-12fca82f.th"
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        profiles = tmp / "hw_profiles"
        shutil.copytree(load_profile("host-cpu").profile_dir, profiles)
        os.environ["EDGEPRUNE_PROFILES_DIR"] = str(profiles)
        task = write_animal_task(shared, tmp / "animals", args.train_per_class, args.test_per_class)
        cfg = CompileConfig.from_mapping({
            "model": {"name": "resnet20", "transfer": True, "head_hidden": args.hidden, "backbone_weights": str(weights)},
            "data": {"source": str(task), "seed": args.seed},
            "search": {"generations": args.generations, "population": args.population, "seed": args.seed,
                       "val_size": 600, "calib_batches": 4, "batch_size": 64},
            "pretrain": {"epochs": args.head_epochs, "lr": 0.05},
            "finalize": {"epochs": args.finetune_epochs, "lr": 0.01},
            "ship": {"verify_images": 600},
        })  # fmt: skip
        t0 = time.perf_counter()
        result = compile_run(cfg, tmp / "run", reporter=Reporter())
        wall_s = time.perf_counter() - t0
        run = tmp / "run"
        data = load_data(cfg.data)
        # reference: the pretrained 10-class network, argmax over the six animal logits only
        src = build_model(ModelConfig(name="resnet20", weights=weights)).model
        with torch.no_grad():
            logits = torch.cat([src(xb)[:, list(ANIMALS)] for xb in data.test.x.split(256)])
        zero_shot = float((logits.argmax(1) == data.test.y).float().mean())
        spec = f"transfer:resnet20:{args.hidden}"
        base = build_model(ModelConfig(name=spec, num_classes=6, weights=run / "base" / "weights.pt")).model
        base_acc = evaluate_accuracy(base, data.test.x, data.test.y)
        run_json = json.loads((run / "run.json").read_text())
        done = run_json.get("done", run_json)
        picks = {}
        for name in ("accurate", "knee", "fast"):
            d = run / "picks" / name
            model = rebuild_torch_model(d, read_manifest(d))
            if model is None:
                raise SystemExit(f"{d} cannot be rebuilt")
            info = result["picks"][name]
            ship = done.get(f"ship:{name}", {})
            picks[name] = {
                "test_accuracy": info["test_accuracy"],
                "test_accuracy_before_head_finetune": done.get(f"finalize:{name}", {}).get(
                    "test_accuracy_before_finetune"
                ),
                "val_error_in_search": info["error"],
                "head_hidden_kept": int(model.head[0].out_features),
                "head_hidden_fraction": round(model.head[0].out_features / args.hidden, 4),
                "backbone_params_kept": _params(model.backbone),
                "backbone_params_fraction": round(_params(model.backbone) / _params(base.backbone), 4),
                "params": info["params"],
                "predicted_latency_ms": round(info["latency_ms"], 4),
                "measured_latency_ms": ship.get("measured_latency_ms"),
                "measured_on": ship.get("measured_on"),
                "verified": (ship.get("verify") or {}).get("passed"),
            }
        payload = {
            "command": "python benchmarks/transfer_mode.py "
            + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("data", "out")
            ),
            "task": {
                "classes": [str(c) for c in data.classes],
                "train": len(data.train),
                "val": len(data.val),
                "test": len(data.test),
                "source": "CIFAR-10 test.npz only (never trained on): train/val from the first 500 per class, test from the last 500",
                "caveat": "the six classes are among the backbone's ten: a relabelled subset of the source task, no domain shift",
            },
            "backbone": "resnet20 (CIFAR-10 weights resnet20-12fca82f.th), frozen",
            "head_hidden": args.hidden,
            "evaluations": result["n_evals"],
            "front": result["front"],
            "latency_source": result["latency_source"],
            "zero_shot_pretrained_6_logits_test_accuracy": round(zero_shot, 4),
            "unpruned_transfer_test_accuracy": round(base_acc, 4),
            "unpruned_transfer_after_same_finetune": done.get("finalize:baseline", {}).get("test_accuracy"),
            "unpruned_backbone_params": _params(base.backbone),
            "picks": picks,
            "verified": result["verified"],
            "wall_s": round(wall_s, 1),
            "threads": torch.get_num_threads(),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1))
    print(f"{'pick':9s} {'test acc':>8s} {'head kept':>9s} {'backbone':>9s} {'pred ms':>8s} {'meas ms':>8s}")
    for name, p in picks.items():
        meas = p["measured_latency_ms"]
        print(f"{name:9s} {p['test_accuracy']:8.2%} {p['head_hidden_kept']:>4d}/{args.hidden:<4d} "
              f"{p['backbone_params_fraction']:9.1%} {p['predicted_latency_ms']:8.4f} "
              f"{meas if meas is None else round(meas, 4)!s:>8s}")  # fmt: skip
    print(f"unpruned transfer {base_acc:.2%}; pretrained 10-class net on the 6 animal logits {zero_shot:.2%}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
