"""INT8 export: a pick quantized with its target's calibration recipe, and the calibration ranges.

The recipe model (:class:`CalibrationRecipe`, ``calibration/<target>.yaml``) and the quantizer itself
live in :mod:`edgeprune.latency.quantize`, so the INT8 latency profiler quantizes the kernels it times
exactly as a pick is quantized here (one way to quantize). This module draws the calibration samples
deterministically (seeded) from the training split and, besides the INT8 model, saves the calibration
ranges as edgeprune's table JSON and as TensorRT's calibration cache, so an engine can also be built
on the device from the FP32 model plus the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.errors import ExportError
from edgeprune.export.calibration_table import write_table_json, write_trt_cache
from edgeprune.latency.quantize import CalibrationRecipe, load_recipe, quantize_onnx, recipe_dir

__all__ = [
    "CalibrationRecipe",
    "Int8Artifacts",
    "calibration_samples",
    "load_recipe",
    "quantize_int8",
    "recipe_dir",
]


def calibration_samples(train_x: Any, num_samples: int, seed: int) -> np.ndarray:
    """``num_samples`` images drawn without replacement from ``train_x`` by ``seed`` (sorted indices)."""
    x = np.asarray(train_x, dtype=np.float32)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ExportError("calibration needs a non-empty NCHW batch of training images")
    n = min(num_samples, x.shape[0])
    idx = np.sort(np.random.default_rng(seed).choice(x.shape[0], size=n, replace=False))
    return np.ascontiguousarray(x[idx])


@dataclass(frozen=True)
class Int8Artifacts:
    """What INT8 export writes next to the FP32 model."""

    model_path: Path  # model.int8.onnx
    table_path: Path  # calibration.json (edgeprune's table)
    trt_cache_path: Path  # calibration.cache (TensorRT's format)
    format: str
    method: str
    num_samples: int
    tensors_calibrated: int


def quantize_int8(onnx_path: Path, calib_x: Any, recipe: CalibrationRecipe, out_path: Path) -> Int8Artifacts:
    """Quantize the FP32 model at ``onnx_path`` to INT8 at ``out_path`` with ``recipe``.

    ``calib_x`` is the pool of training images (NCHW, normalised) the samples are drawn from.
    Writes ``calibration.json`` and ``calibration.cache`` beside ``out_path``.
    """
    import onnx

    onnx_path, out_path = Path(onnx_path), Path(out_path)
    proto = onnx.load(str(onnx_path))
    x = calibration_samples(calib_x, recipe.num_samples, recipe.seed)
    ranges = quantize_onnx(onnx_path, x, recipe, out_path, error=ExportError)
    # TensorRT parses model.onnx: keep the ranges of tensors that exist there under the same name
    names = {i.name for i in proto.graph.input} | {o for n in proto.graph.node for o in n.output}
    trt_ranges = {k: v for k, v in ranges.items() if k in names}
    meta = {
        "recipe": recipe.to_dict(), "num_samples": len(x), "fp32_model": onnx_path.name,
        "int8_model": out_path.name, "tensor_names_refer_to": "the fp32 model after onnxruntime's quant_pre_process",
    }  # fmt: skip
    table = write_table_json(out_path.parent / "calibration.json", ranges, meta)
    cache = write_trt_cache(
        out_path.parent / "calibration.cache", trt_ranges, trt_version=recipe.trt_cache_version
    )
    return Int8Artifacts(out_path, table, cache, recipe.format, recipe.method, len(x), len(trt_ranges))
