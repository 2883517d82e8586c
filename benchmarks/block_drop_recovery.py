"""How much accuracy does a faster ResNet-56 recover with the finalize recipe? (context for issue 5's knee bar)

Drops identity blocks evenly across the three stages (the cheapest way to a large CPU speedup),
re-estimates the changed BatchNorms, fine-tunes with the search-quality benchmark's finalize recipe
(3 epochs, SGD lr 0.01, batch 128, on the 10,000 training images of ``../shared/data/cifar10``) and
reports test accuracy next to the unpruned network fine-tuned the same way, with the table's
predicted speedup. Writes ``benchmarks/results/block_drop_recovery.json``.

    python benchmarks/block_drop_recovery.py --epochs 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from bench_common import command_line, write_result

from edgeprune.config import DataConfig, ModelConfig
from edgeprune.data import load_data
from edgeprune.errors import ProfileError
from edgeprune.graph import PruningPlan, apply_plan
from edgeprune.latency import load_profile, predictor_for
from edgeprune.models import build_model
from edgeprune.train import evaluate_accuracy, fine_tune, recalibrate_changed_bn

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared" / "data").resolve()
# the order blocks are dropped in: every stage loses its 2nd, 4th, 6th, 8th, 5th block in turn
ORDER = [f"layer{s}.{i}" for i in (2, 4, 6, 8, 5) for s in (1, 2, 3)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--drops", default="0,9,13", help="how many blocks to drop, comma-separated")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--kd-alpha", type=float, default=0.0, help="distil from the original network (0: off)")
    ap.add_argument(
        "--bf16", action="store_true", help="fine-tune with bfloat16 forward passes (CPU autocast)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "block_drop_recovery.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = load_data(DataConfig(source=str(SHARED / "cifar10"), seed=args.seed))
    base = build_model(
        ModelConfig(name="resnet56", weights=SHARED / "pretrained" / "resnet56-4bfd9763.th")
    ).model
    base.eval()
    example = torch.zeros(1, 3, 32, 32)
    predictor = predictor_for(load_profile("host-cpu"))  # predicted speedups: this machine's table, if any
    try:
        full_ms = predictor.predict_ms(base, (3, 32, 32))
    except ProfileError as e:  # no table of ResNet-56 here: accuracy only
        print(f"no predicted speedups: {e}")
        full_ms = None
    rows = []
    for n in (int(v) for v in args.drops.split(",")):
        plan = PruningPlan(drop_blocks=tuple(ORDER[:n]))
        net = recalibrate_changed_bn(base, apply_plan(base, plan, example), data.calib.x)
        before = evaluate_accuracy(net, data.test.x, data.test.y)
        t0 = time.time()
        fine_tune(
            net,
            data.train.x,
            data.train.y,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=128,
            seed=args.seed,
            teacher=base if args.kd_alpha > 0 else None,
            kd_alpha=args.kd_alpha,
            bf16=args.bf16,
        )
        after = evaluate_accuracy(net.eval(), data.test.x, data.test.y)
        rows.append({
            "blocks_dropped": n, "blocks_kept": 27 - n,
            "predicted_speedup": full_ms and full_ms / predictor.predict_ms(net, (3, 32, 32)),
            "test_acc_before_finetune": before, "test_acc_after_finetune": after,
            "finetune_s": round(time.time() - t0, 1),
        })  # fmt: skip
        print(f"{n:2d} blocks dropped: predicted {rows[-1]['predicted_speedup'] or float('nan'):.2f}x, "
              f"test accuracy {before:.2%} -> {after:.2%}", flush=True)  # fmt: skip
    ref = next((r["test_acc_after_finetune"] for r in rows if r["blocks_dropped"] == 0), None)
    for r in rows:
        r["drop_vs_unpruned_finetuned_points"] = (
            None if ref is None else 100 * (ref - r["test_acc_after_finetune"])
        )
    out = {
        "benchmark": "block_drop_recovery", "model": "resnet56", "train_images": len(data.train),
        "finetune_epochs": args.epochs, "lr": args.lr, "kd_alpha": args.kd_alpha, "bf16": args.bf16, "rows": rows,
        "command": command_line(__file__, args),
    }  # fmt: skip
    print(f"wrote {write_result(args.out, out)}")


if __name__ == "__main__":
    main()
