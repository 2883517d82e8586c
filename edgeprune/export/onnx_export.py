"""ONNX export: a (pruned) network becomes a checked, simplified ONNX model with a recorded contract.

The legacy TorchScript exporter (``dynamo=False``) is used: it is ~100x faster than the dynamo
exporter on these networks and writes the opset we ask for. The graph is simplified
with onnxslim, checked with the ONNX checker, and its input name/shape are read back from the file so
the recorded contract is the one the file really has.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.atomic import write_bytes_atomic
from edgeprune.errors import ExportError, VerificationError

MIN_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class OnnxExportInfo:
    """What an exported ONNX file holds: where, which opset, and its input/output contract."""

    path: Path
    opset: int
    input_name: str
    input_shape: tuple[int | str, ...]  # (N, C, H, W); N is "batch" when dynamic
    output_name: str
    output_shape: tuple[int | str, ...]
    dynamic_batch: bool
    simplified: bool
    layout: str = "NCHW"
    dtype: str = "float32"


def _shape_of(value_info: Any) -> tuple[int | str, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)


def _simplify(model: Any) -> Any:
    import onnxslim

    try:
        return onnxslim.slim(model)
    except Exception as err:  # onnxslim raises assorted types; a failed simplification is not fatal
        raise ExportError(
            f"onnxslim could not simplify the model: {str(err).splitlines()[0][:200]}"
        ) from None


def export_onnx(
    model: Any,
    example_input: Any,
    path: Path,
    *,
    opset: int = MIN_OPSET,
    dynamic_batch: bool = False,
    simplify: bool = True,
) -> OnnxExportInfo:
    """Export ``model`` (eval mode is forced) to ``path``; raises :class:`ExportError` on failure.

    ``example_input`` fixes C, H, W (and N unless ``dynamic_batch``). The file is written atomically.
    """
    import onnx
    import torch

    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old; edgeprune exports opset >= {MIN_OPSET}")
    if not isinstance(example_input, torch.Tensor) or example_input.ndim != 4:
        raise ExportError("example_input must be a 4-d NCHW tensor")
    path = Path(path)
    was_training = model.training
    model.eval()
    buf = io.BytesIO()
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is chosen on purpose
            torch.onnx.export(
                model, (example_input,), buf, dynamo=False,  # type: ignore[arg-type]  # legacy exporter takes a file object
                opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )  # fmt: skip
    except Exception as err:  # the exporter raises many types for untraceable models
        raise ExportError(f"ONNX export failed: {str(err).splitlines()[0][:300]}") from None
    finally:
        model.train(was_training)
    proto = onnx.load_from_string(buf.getvalue())
    if simplify:
        proto = _simplify(proto)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as err:
        raise ExportError(
            f"the exported model fails the ONNX checker: {str(err).splitlines()[0][:300]}"
        ) from None
    write_bytes_atomic(path, proto.SerializeToString())
    return describe_onnx(path, simplified=simplify)


def load_onnx_checked(path: Path) -> Any:
    """Load and check an ONNX file; a missing or corrupt file is a :class:`VerificationError`."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise VerificationError(f"ONNX model not found: {path}")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as err:  # protobuf DecodeError, ValidationError, ...
        raise VerificationError(
            f"{path} is not a valid ONNX model: {str(err).splitlines()[0][:200]}"
        ) from None
    if not proto.graph.input or not proto.graph.output:
        raise VerificationError(f"{path} is not a valid ONNX model: it has no graph input or output")
    return proto


def describe_onnx(path: Path, *, simplified: bool = True) -> OnnxExportInfo:
    """The contract of an existing ONNX file (first input and output)."""
    proto = load_onnx_checked(path)
    inp, out = proto.graph.input[0], proto.graph.output[0]
    in_shape, out_shape = _shape_of(inp), _shape_of(out)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return OnnxExportInfo(
        path=Path(path), opset=opset, input_name=inp.name, input_shape=in_shape, output_name=out.name,
        output_shape=out_shape, dynamic_batch=not isinstance(in_shape[0], int), simplified=simplified,
    )  # fmt: skip
