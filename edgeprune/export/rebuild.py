"""Rebuild a network from plain data: its architecture's name, a pruning plan and its weights.

The one place a pruned network is put back together — by ``compile`` (the base network of the run,
finalize, ship, the report's influential filters), ``edgeprune ensemble``, ``edgeprune export`` and
``edgeprune verify``. Only tensors are loaded (``weights_only``); the architecture comes from the
model name and the plan, never from pickled code.

The name is the one a pick's manifest records (``model_name``): a built-in family,
``torchvision:NAME``, ``package.module:factory`` or, for a transfer network,
``transfer:BACKBONE:H``. A run's config names the *backbone* in transfer mode: turn it into the
network's name with :func:`edgeprune.models.transfer.transfer_spec` (the backbone's name alone
rebuilds the backbone with its old classifier, into which the transfer network's weights do not
load).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgeprune.errors import ConfigError, ModelLoadError
from edgeprune.export.pick import BUFFERS, PLAN, WEIGHTS

if TYPE_CHECKING:  # torch and the graph load when a network is rebuilt, not on import
    from torch import nn

    from edgeprune.graph import PruningPlan


def rebuild(
    model_name: str,
    num_classes: int | None,
    *,
    input_shape: Sequence[int] | None = None,
    base_weights: Path | None = None,
    plan: PruningPlan | None = None,
    weights: Path | None = None,
    buffers: Path | None = None,
) -> nn.Module:
    """The network ``model_name`` names, pruned by ``plan``, with its weights; in eval mode.

    ``base_weights`` are the unpruned network's (a run's ``base/weights.pt``): the plan then keeps the
    channels it kept in the search, so the result is the network the search evaluated. ``plan`` needs
    ``input_shape`` (C, H, W). ``weights`` are the pruned network's own (a pick's fine-tuned
    ``weights.pt``), loaded after the plan; ``buffers`` its non-persistent buffers (``buffers.pt``),
    which the plan alone cannot restore without the base weights (see
    :func:`edgeprune.export.pick.write_extra_buffers`).
    """
    import torch

    from edgeprune.config import ModelConfig
    from edgeprune.graph import apply_plan
    from edgeprune.models import build_model, load_weights

    model = build_model(ModelConfig(name=model_name, num_classes=num_classes, weights=base_weights)).model
    if plan is not None:
        if input_shape is None:
            raise ValueError("rebuilding a pruned network needs its input shape (C, H, W)")
        model = apply_plan(model, plan, torch.zeros(1, *input_shape))
    if weights is not None:
        load_weights(model, weights)
    if buffers is not None:
        load_buffers(model, buffers)
    return model.eval()


def read_plan(path: Path) -> PruningPlan:
    """A ``plan.json``; an unreadable or malformed file is a one-line :class:`ModelLoadError`."""
    from edgeprune.graph import PruningPlan

    try:
        return PruningPlan.from_json(Path(path).read_text())
    except (OSError, ValueError, ConfigError) as err:
        raise ModelLoadError(f"cannot read {path}: {err}") from None


def load_pick(
    pick_dir: Path,
    *,
    model_name: str | None = None,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    base_weights: Path | None = None,
) -> nn.Module:
    """A pick directory's network: its ``plan.json`` (when it has one), ``weights.pt`` and
    ``buffers.pt`` (when it has one), in eval mode.

    ``model_name``, ``num_classes`` and ``input_shape`` (C, H, W) default to the pick's
    ``manifest.json`` (``model_name``, the number of ``class_names``, ``input_shape``); pass them
    where the manifest is not written yet (``compile``'s ship stage). ``base_weights``: see
    :func:`rebuild`.
    """
    pick_dir = Path(pick_dir)
    if model_name is None or num_classes is None or input_shape is None:
        from edgeprune.export.manifest import read_manifest

        manifest = read_manifest(pick_dir)
        if model_name is None:
            if manifest.model_name is None:
                raise ModelLoadError(f"{pick_dir}: the manifest names no model to rebuild (model_name)")
            model_name = manifest.model_name
        num_classes = len(manifest.class_names) if num_classes is None else num_classes
        input_shape = manifest.input_shape[1:] if input_shape is None else input_shape
    plan_path, buffers_path = pick_dir / PLAN, pick_dir / BUFFERS
    return rebuild(
        model_name, num_classes, input_shape=input_shape, base_weights=base_weights,
        plan=read_plan(plan_path) if plan_path.is_file() else None, weights=pick_dir / WEIGHTS,
        buffers=buffers_path if buffers_path.is_file() else None,
    )  # fmt: skip


def load_buffers(model: nn.Module, path: Path) -> nn.Module:
    """Copy the buffers saved in ``path`` (``buffers.pt``) into ``model``; each must exist there with
    the same shape."""
    import torch

    try:
        extra = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors of several types
        raise ModelLoadError(f"cannot read {path}: {str(err).splitlines()[0][:200]}") from None
    if not isinstance(extra, dict):
        raise ModelLoadError(f"{path} does not hold a dict of buffers")
    buffers = dict(model.named_buffers())
    for name, value in extra.items():
        if name not in buffers or not isinstance(value, torch.Tensor) or buffers[name].shape != value.shape:
            raise ModelLoadError(f"{path}: buffer {name!r} does not fit the rebuilt model")
        buffers[name].copy_(value)
    return model
