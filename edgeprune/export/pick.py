"""Ship one pick: FP32 ONNX, INT8 model + calibration (INT8 targets), optional AOTInductor package, manifest.

The pipeline calls :func:`ship_pick` once per pick after fine-tuning has written ``weights.pt`` and
``plan.json`` into the pick directory; the directory layout is documented in
:mod:`edgeprune.export.manifest`. ``edgeprune verify`` then checks what was shipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.export.aoti import cpu_isa, export_aoti
from edgeprune.export.int8 import CalibrationRecipe, Int8Artifacts, quantize_int8
from edgeprune.export.manifest import write_manifest
from edgeprune.export.onnx_export import OnnxExportInfo, export_onnx

MODEL_ONNX = "model.onnx"
MODEL_INT8 = "model.int8.onnx"
MODEL_PT2 = "model.pt2"
MODEL_ENGINE = "model.engine"
WEIGHTS = "weights.pt"
PLAN = "plan.json"
BUFFERS = "buffers.pt"


def write_extra_buffers(model: Any, path: Path) -> Path | None:
    """Save the buffers ``state_dict`` leaves out (non-persistent), or nothing when there are none.

    A pruned CIFAR ResNet's option-A shortcut (``EmbedShortcut.embed``) is such a buffer, and its 0/1
    pattern depends on which channels the plan kept — which ``weights.pt`` + ``plan.json`` alone do
    not say (the channels are chosen from the *base* weights). With this file the pick rebuilds alone.
    """
    import io

    import torch

    from edgeprune.atomic import write_bytes_atomic

    persistent = set(model.state_dict())
    extra = {n: b.detach().clone() for n, b in model.named_buffers() if n not in persistent}
    if not extra:
        return None
    buf = io.BytesIO()
    torch.save(extra, buf)
    return write_bytes_atomic(path, buf.getvalue())


@dataclass(frozen=True)
class ShippedPick:
    """What :func:`ship_pick` wrote."""

    pick_dir: Path
    onnx: OnnxExportInfo
    int8: Int8Artifacts | None
    aoti_path: Path | None
    manifest_path: Path


def ship_pick(
    pick_dir: Path, model: Any, example_input: Any, *, target: str, precision: str, mean: Sequence[float],
    std: Sequence[float], class_names: Sequence[str], expected_latency_ms: float | None, latency_source: str,
    model_name: str | None = None, calib_x: Any = None, recipe: CalibrationRecipe | None = None,
    aoti: bool = False, dynamic_batch: bool = False, threads: int = 1, spinning: bool = True,
) -> ShippedPick:  # fmt: skip
    """Export ``model`` into ``pick_dir`` for ``target`` and write its manifest.

    INT8 (``precision == "int8"``) needs ``calib_x`` (training images) and the target's ``recipe``.
    ``aoti=True`` also compiles ``model.pt2`` for the C++ LibTorch backend (10-60 s). ``threads`` and
    ``spinning`` are the target's, recorded for the runner.
    """
    from edgeprune.errors import ConfigError

    pick_dir = Path(pick_dir)
    pick_dir.mkdir(parents=True, exist_ok=True)
    info = export_onnx(model, example_input, pick_dir / MODEL_ONNX, dynamic_batch=dynamic_batch)
    files = [MODEL_ONNX]
    if write_extra_buffers(model, pick_dir / BUFFERS) is not None:
        files.append(BUFFERS)
    int8 = None
    if precision == "int8":
        if recipe is None or calib_x is None:
            raise ConfigError(f"INT8 shipping for {target} needs a calibration recipe and calibration images")
        int8 = quantize_int8(pick_dir / MODEL_ONNX, calib_x, recipe, pick_dir / MODEL_INT8)
        files += [MODEL_INT8, int8.table_path.name, int8.trt_cache_path.name]
    aoti_path = None
    if aoti:
        aoti_path = export_aoti(model, example_input, pick_dir / MODEL_PT2, dynamic_batch=dynamic_batch)
        files.append(MODEL_PT2)
    files += [n for n in (WEIGHTS, PLAN) if (pick_dir / n).is_file()]  # written by finalize
    shape = [d if isinstance(d, int) else -1 for d in info.input_shape]
    manifest = write_manifest(
        pick_dir, files=files, input_name=info.input_name, input_shape=shape, dtype=info.dtype, mean=mean, std=std,
        class_names=class_names, target=target, precision=precision, expected_latency_ms=expected_latency_ms,
        latency_source=latency_source, model_name=model_name, cpu_isa=cpu_isa() if aoti else None,
        threads=threads, spinning=spinning,
    )  # fmt: skip
    return ShippedPick(pick_dir, info, int8, aoti_path, manifest)
