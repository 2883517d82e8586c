"""What every benchmark script does at its end: name the command that reproduces it, write its JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


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
