"""Rebuild a pick's PyTorch network from its directory: model name (manifest) + plan.json + weights.pt.

Only tensors are loaded (``weights_only``); the architecture comes from the model family and the
pruning plan, never from pickled code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeprune.errors import ModelLoadError
from edgeprune.export.manifest import Manifest
from edgeprune.export.pick import BUFFERS, PLAN, WEIGHTS


def rebuild_torch_model(pick_dir: Path, manifest: Manifest) -> Any | None:
    """The pick as an eval-mode ``nn.Module``, or ``None`` when the directory lacks weights or a model name."""
    import torch

    from edgeprune.config import ModelConfig
    from edgeprune.graph import PruningPlan, apply_plan
    from edgeprune.models import build_model, load_weights

    pick_dir = Path(pick_dir)
    if manifest.model_name is None or not (pick_dir / WEIGHTS).is_file():
        return None
    c, h, w = manifest.input_shape[1:]
    loaded = build_model(ModelConfig(name=manifest.model_name, num_classes=len(manifest.class_names)))
    model = loaded.model
    plan_path = pick_dir / PLAN
    if plan_path.is_file():
        try:
            plan = PruningPlan.from_json(plan_path.read_text())
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"cannot read {plan_path}: {err}") from None
        model = apply_plan(model, plan, torch.zeros(1, c, h, w))
    load_weights(model, pick_dir / WEIGHTS)
    if (pick_dir / BUFFERS).is_file():
        _load_buffers(model, pick_dir / BUFFERS)
    return model.eval()


def _load_buffers(model: Any, path: Path) -> None:
    import torch

    try:
        extra = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors of several types
        raise ModelLoadError(f"cannot read {path}: {str(err).splitlines()[0][:200]}") from None
    buffers = dict(model.named_buffers())
    for name, value in extra.items():
        if name not in buffers or buffers[name].shape != value.shape:
            raise ModelLoadError(f"{path}: buffer {name!r} does not fit the rebuilt model")
        buffers[name].copy_(value)
