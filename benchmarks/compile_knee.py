"""One `edgeprune compile` of the pretrained CIFAR ResNet-56 as a user runs it; the knee timed against the
unpruned network (issue 16: "≥ 2× measured at ≤ 1.0 point, within 90 minutes on 2 cores").

Method:

1. The budget is ``compile --speedup`` (``--speedup``): the run's own table's time of the unpruned
   network divided by it, what a user asking for "s× faster" passes. (The first full run passed
   an absolute ``--budget-ms``, a timing taken before the compile / 2.2; its knee was as fast
   relative to the unpruned network on the run's table as measured, but the two scales disagreed by
   ~17 %, and so the knee came out 1.89×. This machine's speed moves that much within minutes: one
   network timed 2.23 ms, then 2.51 ms ten minutes later. ``--budget-ms`` still passes one directly.)
2. ``edgeprune compile resnet56`` runs in a subprocess with a fresh ``EDGEPRUNE_HOME`` inside the work
   folder, so the run profiles its own latency table, on the CIFAR-10 data in ``--data`` (``--full``:
   plus ``cifar10-extra/train_40k.npz``, the 50,000-image training set), with the given search and
   finalize settings. Its wall time is the compile's time; the split by stage is read from the
   timestamps of its ``stage`` log lines.
3. Every shipped pick's ``model.onnx`` (and ``model.int8.onnx`` where the run shipped INT8) is timed
   side by side with the unpruned FP32 network in one interleaved run (A, B, A, B, ...; the minimum
   over passes of the pass median), so a speedup is a ratio within one run.
4. Accuracy: each pick's test accuracy after fine-tuning (10,000 test images) against the unpruned
   network fine-tuned with the same recipe by the same run (``finalize:baseline`` in ``run.json``).
   For INT8 picks the shipped ``model.int8.onnx`` is run on ONNX Runtime over the same 10,000 test
   images (the run's own data config, so the same split and normalisation), and the bar is judged on
   that accuracy: what ships is the INT8 model (verification checks only ``ship.verify_images``).

    python benchmarks/compile_knee.py --full --budget-ms 1.262 --population 24 --generations 10 --workers 2 \\
        --finetune-epochs 5 --distill --out benchmarks/results/compile_knee_full.json

(that first full run's budget: 2.787 ms measured / 2.2.)

``--run DIR`` analyses a finished run instead of compiling: the JSON then names the run directory
and holds its ``config.yaml``, and its time is the span of the run's log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_common import command_line, time_side_by_side, write_result

from edgeprune.config import ModelConfig
from edgeprune.data import load_data
from edgeprune.export.onnx_export import export_onnx
from edgeprune.models import build_model
from edgeprune.pipeline_config import CompileConfig
from edgeprune.runtime import get_runtime
from edgeprune.runtime.onnxruntime_rt import cpu_model_name

ROOT = Path(__file__).resolve().parents[1]
X = np.zeros((1, 3, 32, 32), np.float32)
STAGE_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) INFO stage (\S+)")


def stage_split(log: Path) -> dict[str, float]:
    """Seconds per stage name, from the timestamps of the log's ``stage`` lines (each stage line runs to
    the next one; the last to the log's last line)."""
    marks: list[tuple[float, str]] = []
    last = None
    for line in log.read_text().splitlines():
        stamp = line[:23]
        try:
            t = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
        last = t
        m = STAGE_LINE.match(line)
        if m:
            marks.append((t, m.group(2)))
    split: dict[str, float] = {}
    for (t, name), end in zip(marks, [*(t for t, _ in marks[1:]), last], strict=True):
        split[name] = round(split.get(name, 0.0) + (end - t), 1)
    return split


def unpruned_onnx(path: Path) -> Path:
    model = build_model(ModelConfig(name="resnet56", num_classes=10)).model.eval()
    export_onnx(model, torch.zeros(1, 3, 32, 32), path)
    return path


def test_accuracies(run: Path, models: list[Path]) -> dict[Path, float]:
    """Top-1 accuracy of each ONNX model on the run's whole test split, on ONNX Runtime (the data is
    loaded only when there is a model to test: an FP32 run ships no INT8 models)."""
    if not models:
        return {}
    test = load_data(CompileConfig.from_yaml(run / "config.yaml").data).test
    x, y = np.ascontiguousarray(test.x.numpy()), test.y.numpy()
    rt = get_runtime("onnxruntime-cpu", threads=1)
    return {m: float(np.mean(rt.load(m).run(x).argmax(1) == y)) for m in models}


def compile_args(args: argparse.Namespace, out: Path) -> list[str]:
    data = args.data / "cifar10"
    budget = ["--budget-ms", f"{args.budget_ms:g}"] if args.budget_ms else ["--speedup", f"{args.speedup:g}"]
    cmd = ["edgeprune", "compile", "resnet56", "--weights", str(args.data / "pretrained" / "resnet56-4bfd9763.th"),
           "--data", str(data), "--target", "host-cpu", "--threads", str(args.threads),
           *budget, "--population", str(args.population), "--generations", str(args.generations),
           "--workers", str(args.workers), "--finetune-epochs", str(args.finetune_epochs), "--seed", str(args.seed),
           "--precision", args.precision, "--finetune-precision", args.finetune_precision, "--distill" if args.distill else "--no-distill", "--picks", args.picks, "--out", str(out), "--quiet"]  # fmt: skip
    if args.full:
        cmd += ["--extra-train", str(args.data / "cifar10-extra" / "train_40k.npz")]
    if args.config:
        cmd += ["--config", str(args.config)]
    return cmd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    ap.add_argument("--full", action="store_true", help="the 50,000-image training set (adds cifar10-extra)")
    ap.add_argument(
        "--speedup",
        type=float,
        default=2.2,
        help="compile --speedup: budget = the run's table's time of the unpruned network / this",
    )
    ap.add_argument("--budget-ms", type=float, help="compile --budget-ms instead of --speedup")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--generations", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--finetune-epochs", type=int, default=6)
    ap.add_argument("--distill", action="store_true")
    ap.add_argument("--finetune-precision", default="fp32", choices=["fp32", "bf16", "auto"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "int8"])
    ap.add_argument(
        "--picks", default="accurate,knee,fast", help="compile --picks (the knee must be among them)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", type=Path, help="compile --config: a YAML of further settings (flags win)")
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--run", type=Path, help="analyse this finished run instead of compiling")
    ap.add_argument(
        "--keep-run",
        type=Path,
        help="copy the compiled run directory here (it lives in a temp folder); its latency table goes to "
        "KEEP_RUN.home (the EDGEPRUNE_HOME to resume it with)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compile_knee.json")
    args = ap.parse_args()
    if "knee" not in (p.strip() for p in args.picks.split(",")):  # as compile --picks reads it
        sys.exit("--picks: the knee is what this benchmark judges; name it")
    if args.run is not None and not (args.run / "run.json").is_file():
        sys.exit(f"--run {args.run}: not a run directory (no run.json)")

    with tempfile.TemporaryDirectory() as tmp:
        ref = unpruned_onnx(Path(tmp) / "unpruned.onnx")
        out: dict[str, Any] = {"command": command_line(__file__, args), "cpu": cpu_model_name(),
                               "load_average_at_start": os.getloadavg()}  # fmt: skip
        if args.run is None:
            run = Path(tmp) / "run"
            cmd = compile_args(args, run)
            # the run's latency table lives in EDGEPRUNE_HOME; kept beside a kept run, the run can be resumed
            # later (e.g. `edgeprune compile ... --resume --picks knee,accurate` with that EDGEPRUNE_HOME)
            home = (
                Path(tmp) / "home"
                if args.keep_run is None
                else args.keep_run.with_name(args.keep_run.name + ".home")
            )
            env = {**os.environ, "EDGEPRUNE_HOME": str(home)}
            print("running:", " ".join(cmd), flush=True)
            t0 = time.perf_counter()
            rc = subprocess.run(cmd, env=env).returncode
            out["compile_seconds"] = round(time.perf_counter() - t0, 1)
            kept = args.keep_run if run.is_dir() else None  # a refused compile leaves no run directory
            if kept is not None:
                shutil.copytree(run, kept, dirs_exist_ok=True)
            out["compile_rc"] = rc
            if rc != 0:
                sys.exit(
                    f"edgeprune compile failed (exit {rc})"
                    + (f"; see {kept / 'edgeprune.log'}" if kept else "")
                )
        else:
            run = args.run
        out["stage_seconds"] = stage_split(run / "edgeprune.log")
        if args.run is not None:  # first to last log line: the run's own time
            out["compile_seconds"] = round(sum(out["stage_seconds"].values()), 1)
        out["compile_command"] = " ".join(cmd) if args.run is None else f"(run dir {run})"
        out["config"] = (run / "config.yaml").read_text()
        state = json.loads((run / "run.json").read_text())["done"]
        baseline = state["finalize:baseline"]["test_accuracy"]
        picks = list(json.loads((run / "manifest.json").read_text())["picks"])  # the picks the run shipped
        onnx = [run / "picks" / p / "model.onnx" for p in picks]
        int8 = [run / "picks" / p / "model.int8.onnx" for p in picks]
        timed = [ref, *onnx, *(p for p in int8 if p.is_file())]
        ms = dict(
            zip(
                timed,
                time_side_by_side(
                    timed, X, threads=args.threads, passes=args.passes, reps=args.reps, warmup=30
                ),
                strict=True,
            )
        )
        out["unpruned_fp32_ms"] = ms[ref]
        out["baseline_test_accuracy"] = baseline
        out["picks"] = {}
        int8_acc = test_accuracies(run, [q for q in int8 if q in ms])
        for name, fp, q in zip(picks, onnx, int8, strict=True):
            fin, ship = state[f"finalize:{name}"], state.get(f"ship:{name}", {})
            row = {"test_accuracy": fin["test_accuracy"], "drop_points": round(100 * (baseline - fin["test_accuracy"]), 2),
                   "params": fin["params"], "fp32_ms": ms[fp], "speedup_fp32": ms[ref] / ms[fp],
                   "verified": ship.get("verify", {}).get("passed"), "same_as": fin.get("same_as")}  # fmt: skip
            if q in ms:
                row.update(
                    int8_ms=ms[q],
                    speedup_int8_vs_unpruned_fp32=ms[ref] / ms[q],
                    int8_verify_accuracy=ship.get("shipped_accuracy"),
                    int8_test_accuracy=int8_acc[q],
                    int8_drop_points=round(100 * (baseline - int8_acc[q]), 2),
                )
            out["picks"][name] = row
    knee = out["picks"]["knee"]
    shipped_int8 = "int8_ms" in knee
    speed = knee["speedup_int8_vs_unpruned_fp32"] if shipped_int8 else knee["speedup_fp32"]
    drop = knee["int8_drop_points"] if shipped_int8 else knee["drop_points"]
    bar = 4.0 if shipped_int8 else 2.0
    # issue 16: the FP32 knee within 90 minutes; the INT8 bar names no time (the time is reported)
    limit = None if shipped_int8 else 5400
    out["bars"] = {"min_knee_speedup": bar, "max_drop_points": 1.0, "max_compile_seconds": limit,
                   "judged_on": "int8 model vs unpruned fp32" if shipped_int8 else "fp32 model"}  # fmt: skip
    in_time = limit is None or out["compile_seconds"] <= limit
    out["passed"] = bool(speed >= bar and drop <= 1.0 and in_time)
    out["load_average_at_end"] = os.getloadavg()
    print(f"unpruned FP32 {ms[ref]:.3f} ms, fine-tuned {100 * baseline:.2f} %")
    for name, row in out["picks"].items():
        extra = (f"; int8 {row['speedup_int8_vs_unpruned_fp32']:.2f}x at {100 * row['int8_test_accuracy']:.2f} % "
                 f"({row['int8_drop_points']:+.2f} pt below)" if "int8_ms" in row else "")  # fmt: skip
        print(f"{name:8s} {100 * row['test_accuracy']:.2f} % ({row['drop_points']:+.2f} pt below) "
              f"{row['speedup_fp32']:.2f}x fp32{extra}, {row['params']:,} params")  # fmt: skip
    print(f"compile {out['compile_seconds']} s; stages {out['stage_seconds']}; passed {out['passed']}")
    print("wrote", write_result(args.out, out))


if __name__ == "__main__":
    main()
