"""INT8 post-training quantization with ONNX Runtime: the one way edgeprune quantizes a model.

A target's recipe (``calibration/<target>.yaml``) picks the calibration method, the number of samples,
per-channel weights, symmetric activations and the graph format: QOperator for the ONNX Runtime CPU
(faster than FP32 on an AVX-512 CPU, while QDQ was slower: benchmarks/int8_speedup.py) and QDQ for
TensorRT, which reads the scales from the Q/DQ nodes.

Two callers quantize with :func:`quantize_onnx`, so a latency table prices what is shipped:

* the INT8 export (:mod:`edgeprune.export.int8`) quantizes a pick with calibration images drawn from
  the training split, and writes the calibration ranges beside the model;
* the INT8 latency profiler (:class:`ProfileQuantizer`) quantizes each kernel's single-kernel models
  and each whole network it times with the same recipe before timing them.

This module lives in ``latency`` (below ``export``) so the profiler may use it.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from edgeprune.atomic import atomic_output
from edgeprune.config import FrozenConfig
from edgeprune.errors import ConfigError, EdgepruneError, ExportError


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


class _Reader:
    """ONNX Runtime CalibrationDataReader over an array, ``batch`` samples per call."""

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


def input_signature(proto: Any) -> tuple[str, tuple[int, ...]]:
    """``(name, shape)`` of a model's first input; a dynamic dimension reads as 1."""
    inp = proto.graph.input[0]
    dims = inp.type.tensor_type.shape.dim
    return inp.name, tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in dims)


def quantize_onnx(
    model: bytes | Path,
    samples: np.ndarray,
    recipe: CalibrationRecipe,
    out_path: Path,
    *,
    error: type[EdgepruneError] = ExportError,
) -> dict[str, tuple[float, float]]:
    """Quantize the FP32 ``model`` (ONNX bytes or a file) statically with ``recipe`` into ``out_path``.

    ``samples`` are the calibration inputs, used as given (``batch`` of them per calibration call, the
    model's batch size). ONNX Runtime's pre-processing (shape inference, graph optimisation) runs first,
    as it recommends. ``out_path`` is written atomically (:func:`edgeprune.atomic.atomic_output`): a
    failure leaves the file that was there. Returns the calibration range ``(min, max)`` of every
    tensor, by its name in the pre-processed model. A failure of ORT's quantizer is one line of
    ``error``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import load_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    recipe = recipe.check()
    out_path = Path(out_path)
    where = str(model) if isinstance(model, Path) else "a model"
    proto = onnx.load(str(model)) if isinstance(model, Path) else onnx.load_from_string(model)
    name, shape = input_signature(proto)
    batch = shape[0] if shape else 1
    x = np.ascontiguousarray(np.asarray(samples, dtype=np.float32))
    if len(x) < batch:
        raise error(f"calibration needs at least {batch} samples for a batch-{batch} model")
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[recipe.method]  # fmt: skip
    qtype = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    extra = {
        "ActivationSymmetric": recipe.symmetric_activations,
        "WeightSymmetric": recipe.weight_type == "int8",
        "CalibPercentile": recipe.percentile,
    }
    with tempfile.TemporaryDirectory(prefix="edgeprune-int8-") as tmp, atomic_output(out_path) as int8_tmp:
        src = model if isinstance(model, Path) else Path(tmp) / "fp32.onnx"
        if not isinstance(model, Path):
            src.write_bytes(model)
        pre = Path(tmp) / "pre.onnx"
        ranges_json = Path(tmp) / "ranges.json"
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_static(  # writes int8_tmp; atomic_output moves it to out_path once all went well
                str(pre), str(int8_tmp), _Reader(name, x, batch),
                quant_format=QuantFormat.QDQ if recipe.format == "qdq" else QuantFormat.QOperator,
                per_channel=recipe.per_channel, reduce_range=recipe.reduce_range,
                activation_type=qtype[recipe.activation_type], weight_type=qtype[recipe.weight_type],
                calibrate_method=method, extra_options=extra, calibration_cache_path=ranges_json,
            )  # fmt: skip
            return _ranges(load_tensors_data(ranges_json))
        except EdgepruneError:
            raise
        except Exception as err:  # ORT's quantizer raises assorted types
            raise error(f"INT8 quantization of {where} failed: {str(err).splitlines()[0][:300]}") from None


@contextlib.contextmanager
def _ort_warnings_off() -> Iterator[None]:
    """ONNX Runtime's default logger at errors only while the profiler quantizes (its calibration
    sessions warn about unused initializers of every kernel model), then back at ORT's default
    (warnings)."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)
    try:
        yield
    finally:
        onnxruntime.set_default_logger_severity(2)


# timing does not depend on the calibration ranges, only on the graph the recipe produces: a few
# seeded random inputs calibrate a model that is only timed (the shipped model is calibrated on images)
PROFILE_CALIBRATION_SAMPLES = 8


@dataclass(frozen=True)
class ProfileQuantizer:
    """Quantizes the models the latency profiler times, with the target's recipe.

    Calibration inputs are seeded standard-normal arrays of the model's input shape: the ranges they
    give differ from those of real images, but the quantized graph (QLinearConv, fused activations,
    Q/DQ at the ends) is the one the recipe gives any calibration data, and that is what is timed.
    """

    recipe: CalibrationRecipe
    samples: int = PROFILE_CALIBRATION_SAMPLES
    seed: int = 0

    def __call__(self, model: bytes) -> bytes:
        """The INT8 ONNX bytes of the FP32 ONNX ``model``."""
        import onnx

        from edgeprune.errors import ProfileError

        _, shape = input_signature(onnx.load_from_string(model))
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((self.samples * shape[0], *shape[1:])).astype(np.float32)
        with tempfile.TemporaryDirectory(prefix="edgeprune-int8-profile-") as tmp, _ort_warnings_off():
            out = Path(tmp) / "model.int8.onnx"
            quantize_onnx(model, x, self.recipe, out, error=ProfileError)
            return out.read_bytes()

    def describe(self) -> dict[str, Any]:
        """What a table records about how its INT8 models were made."""
        return {
            "recipe": self.recipe.to_dict(),
            "calibration": f"{self.samples} seeded standard-normal inputs per model (seed {self.seed}); "
            "timing depends on the quantized graph, not on the ranges",
        }
