"""INT8 post-training quantization with ONNX Runtime, driven by a per-target calibration recipe.

The recipe (``calibration/<target>.yaml``) picks the calibration method, the number of samples,
per-channel weights, symmetric activations and the graph format: QOperator for the ONNX Runtime CPU
(faster than FP32 on an AVX-512 CPU, while QDQ was slower: benchmarks/int8_speedup.py) and QDQ for TensorRT, which
reads the scales from the Q/DQ nodes. Calibration samples are drawn deterministically (seeded) from
the training split. Besides the INT8 model, the calibration ranges are saved as edgeprune's table
JSON and as TensorRT's calibration cache, so an engine can also be built on the device from the
FP32 model plus the cache.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from edgeprune.atomic import atomic_output
from edgeprune.config import FrozenConfig
from edgeprune.errors import ConfigError, ExportError
from edgeprune.export.calibration_table import write_table_json, write_trt_cache


class CalibrationRecipe(FrozenConfig):
    """How a target's INT8 model is calibrated and laid out."""

    version: int = 1
    target: str | None = None
    method: Literal["minmax", "entropy", "percentile"] = "minmax"
    num_samples: int = Field(default=256, ge=1, le=100_000)
    seed: int = 0  # which training images are drawn
    per_channel: bool = True  # per-output-channel weight scales
    symmetric_activations: bool = False  # TensorRT needs True (zero point 0)
    activation_type: Literal["uint8", "int8"] = "uint8"
    weight_type: Literal["int8", "uint8"] = "int8"
    format: Literal["qdq", "qoperator"] = "qoperator"
    reduce_range: bool = False
    percentile: float = Field(default=99.999, gt=90.0, le=100.0)  # the percentile method only
    trt_cache_version: str = "100800"  # header of the TensorRT cache: TRT-<this>-EntropyCalibration2

    def check(self) -> CalibrationRecipe:
        """Refuse combinations ONNX Runtime or TensorRT reject."""
        if self.format == "qdq" and self.symmetric_activations and self.activation_type == "uint8":
            raise ConfigError("calibration recipe: symmetric activations need activation_type int8")
        return self


def recipe_dir() -> Path:
    """``calibration/`` at the repo root (source tree) or ``<prefix>/share/edgeprune/calibration``."""
    import sys

    here = Path(__file__).resolve().parents[2] / "calibration"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "edgeprune" / "calibration"


def load_recipe(target: str, directory: Path | None = None) -> CalibrationRecipe:
    """The INT8 recipe of ``target`` from ``calibration/<target>.yaml``."""
    path = (directory or recipe_dir()) / f"{target}.yaml"
    if not path.is_file():
        raise ConfigError(f"no INT8 calibration recipe for target {target!r} (looked for {path})")
    return CalibrationRecipe.from_yaml(path).check()


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


class _Reader:
    """ONNX Runtime CalibrationDataReader over an array, one image per call (batch 1 models)."""

    def __init__(self, name: str, x: np.ndarray, batch: int):
        self.name, self.x, self.batch, self.i = name, x, batch, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i + self.batch > len(self.x):
            return None
        out = {self.name: self.x[self.i : self.i + self.batch]}
        self.i += self.batch
        return out

    def __len__(self) -> int:
        return len(self.x) // self.batch

    def set_range(self, start_index: int, end_index: int) -> None:  # for ORT's strided calibration
        self.x, self.i = self.x[start_index:end_index], 0

    def rewind(self) -> None:
        self.i = 0


def _ranges(tensors: Any) -> dict[str, tuple[float, float]]:
    out = {}
    for name in tensors:
        lo, hi = tensors[name].range_value
        out[name] = (float(np.asarray(lo).reshape(-1)[0]), float(np.asarray(hi).reshape(-1)[0]))
    return out


def quantize_int8(onnx_path: Path, calib_x: Any, recipe: CalibrationRecipe, out_path: Path) -> Int8Artifacts:
    """Quantize the FP32 model at ``onnx_path`` to INT8 at ``out_path`` with ``recipe``.

    ``calib_x`` is the pool of training images (NCHW, normalised) the samples are drawn from.
    Writes ``calibration.json`` and ``calibration.cache`` beside ``out_path``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import load_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    recipe = recipe.check()
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    proto = onnx.load(str(onnx_path))
    inp = proto.graph.input[0]
    dim0 = inp.type.tensor_type.shape.dim[0]
    batch = dim0.dim_value if dim0.HasField("dim_value") else 1
    x = calibration_samples(calib_x, recipe.num_samples, recipe.seed)
    if len(x) < batch:
        raise ExportError(f"calibration needs at least {batch} images for a batch-{batch} model")
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[recipe.method]  # fmt: skip
    qtype = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    extra = {
        "ActivationSymmetric": recipe.symmetric_activations,
        "WeightSymmetric": recipe.weight_type == "int8",
        "CalibPercentile": recipe.percentile,
    }
    with tempfile.TemporaryDirectory(prefix="edgeprune-int8-") as tmp, atomic_output(out_path) as int8_tmp:
        pre = Path(tmp) / "pre.onnx"
        ranges_json = Path(tmp) / "ranges.json"
        try:
            quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
            quantize_static(  # writes int8_tmp; atomic_output moves it to out_path once all went well
                str(pre), str(int8_tmp), _Reader(inp.name, x, batch),
                quant_format=QuantFormat.QDQ if recipe.format == "qdq" else QuantFormat.QOperator,
                per_channel=recipe.per_channel, reduce_range=recipe.reduce_range,
                activation_type=qtype[recipe.activation_type], weight_type=qtype[recipe.weight_type],
                calibrate_method=method, extra_options=extra, calibration_cache_path=ranges_json,
            )  # fmt: skip
            ranges = _ranges(load_tensors_data(ranges_json))
        except ExportError:
            raise
        except Exception as err:  # ORT's quantizer raises assorted types
            raise ExportError(
                f"INT8 quantization of {onnx_path} failed: {str(err).splitlines()[0][:300]}"
            ) from None
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
