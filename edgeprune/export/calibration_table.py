"""Calibration tables: edgeprune's JSON (with the run) and TensorRT's calibration cache text.

TensorRT reads a cache whose first line is ``TRT-<version>-EntropyCalibration2`` and whose other
lines are ``<tensor name>: <hex>``, ``<hex>`` being the IEEE-754 bits of the float32 *scale*
(``amax / 127``, symmetric INT8) written big-endian as 8 hex digits. The version number in the
header only has to match what the consuming TensorRT expects when it checks the header (it ignores
the cache with a warning otherwise), so it is a parameter.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeprune.atomic import write_text_atomic
from edgeprune.errors import ExportError

TABLE_FORMAT = "edgeprune-calibration-table"
TABLE_VERSION = 1
TRT_CACHE_VERSION = "100800"  # TensorRT 10.8 (the header edgeprune writes unless told otherwise)
TRT_ALGORITHM = "EntropyCalibration2"


def float_to_hex(value: float) -> str:
    """The float32 bits of ``value`` as 8 lowercase hex digits (big-endian), as TensorRT writes them."""
    return struct.pack(">f", value).hex()


def hex_to_float(text: str) -> float:
    """Inverse of :func:`float_to_hex`."""
    return float(struct.unpack(">f", bytes.fromhex(text.strip()))[0])


def symmetric_scale(lo: float, hi: float) -> float:
    """INT8 symmetric scale of a range: ``max(|lo|, |hi|) / 127`` (never 0)."""
    amax = max(abs(lo), abs(hi))
    return amax / 127.0 if amax > 0 and math.isfinite(amax) else 1.0 / 127.0


def write_table_json(path: Path, ranges: Mapping[str, tuple[float, float]], meta: dict[str, Any]) -> Path:
    """Per-tensor ``{min, max, scale}`` plus ``meta`` (recipe, samples, model) as JSON."""
    tensors = {
        name: {"min": float(lo), "max": float(hi), "scale": symmetric_scale(lo, hi)}
        for name, (lo, hi) in sorted(ranges.items())
    }
    doc = {"format": TABLE_FORMAT, "version": TABLE_VERSION, **meta, "tensors": tensors}
    return write_text_atomic(path, json.dumps(doc, indent=1))


def write_trt_cache(
    path: Path, ranges: Mapping[str, tuple[float, float]], *, trt_version: str = TRT_CACHE_VERSION
) -> Path:
    """TensorRT's calibration cache for ``ranges`` (tensor name -> (min, max))."""
    lines = [f"TRT-{trt_version}-{TRT_ALGORITHM}"]
    for name, (lo, hi) in sorted(ranges.items()):
        if ":" in name or "\n" in name:
            raise ExportError(f"tensor name {name!r} cannot be written to a TensorRT calibration cache")
        lines.append(f"{name}: {float_to_hex(symmetric_scale(lo, hi))}")
    return write_text_atomic(path, "\n".join(lines) + "\n")


def read_trt_cache(path: Path) -> tuple[str, dict[str, float]]:
    """``(header, {tensor: scale})`` of a TensorRT calibration cache."""
    text = Path(path).read_text().splitlines()
    if not text or not text[0].startswith("TRT-"):
        raise ExportError(f"{path} is not a TensorRT calibration cache (no TRT-... header)")
    scales = {}
    for line in text[1:]:
        if line.strip():
            name, _, hx = line.rpartition(": ")
            scales[name] = hex_to_float(hx)
    return text[0], scales
