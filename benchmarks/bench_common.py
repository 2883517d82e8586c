"""What benchmark scripts share: timing ONNX models side by side, naming the command that reproduces a
result, writing its JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.latency.timing import interleaved_benchmark
from edgeprune.runtime import get_runtime


def time_side_by_side(
    paths: list[Path], x: np.ndarray, *, threads: int = 1, passes: int, reps: int, warmup: int
) -> list[float]:
    """ms of each ONNX model on input ``x`` (ONNX Runtime CPU at ``threads``), all timed in one
    interleaved run (A, B, A, B, ...) so a ratio between two of them is one run's; each figure is the
    minimum over passes of the pass median."""
    rt = get_runtime("onnxruntime-cpu", threads=threads)
    sessions = [rt.load(p) for p in paths]
    stats = interleaved_benchmark(
        [lambda s=s: s.run(x) for s in sessions], warmup=warmup, repetitions=reps, passes=passes
    )
    return [s.median_ms for s in stats]


def command_line(script: str, args: argparse.Namespace) -> str:
    """``python benchmarks/SCRIPT --opt value …`` from the parsed arguments (``--out`` and unset ones left out)."""
    opts = " ".join(
        f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')} {v}"
        for k, v in vars(args).items()
        if k != "out" and v is not None and v is not False
    )
    return f"python benchmarks/{Path(script).name} {opts}"


def write_result(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON (numpy scalars as floats), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=float))
    return path
