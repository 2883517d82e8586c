"""Model import (load stage): built-in families, torchvision architectures, user factories, weights."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from edgeprune.config import ModelConfig
from edgeprune.errors import ConfigError
from edgeprune.models.registry import FAMILIES, ModelFamily, register_family, resolve_model
from edgeprune.models.weights import load_weights, read_state_dict

__all__ = [
    "FAMILIES",
    "LoadedModel",
    "ModelFamily",
    "build_model",
    "load_weights",
    "read_state_dict",
    "register_family",
]


@dataclass(frozen=True)
class LoadedModel:
    """A network in eval mode with its weights, and what it expects as input."""

    model: nn.Module
    name: str
    input_shape: tuple[int, int, int] | None  # C, H, W when known
    num_classes: int


def build_model(cfg: ModelConfig) -> LoadedModel:
    """Build the network ``cfg`` names and load its weights (if any); the model is in eval mode.

    In transfer mode (``cfg.transfer``) the network is the backbone ``cfg.name`` with a new head of
    ``cfg.head_hidden`` neurons: ``cfg.weights`` are the full transfer network's, else
    ``cfg.backbone_weights`` load into the backbone (its old classifier ignored; the head stays fresh).
    """
    from edgeprune.models.transfer import TransferNet, load_backbone_weights, transfer_spec

    if cfg.backbone_weights is not None and not cfg.transfer:
        raise ConfigError("backbone_weights are for transfer mode: set transfer: true (--transfer)")
    resolved = resolve_model(transfer_spec(cfg), cfg.num_classes)
    model = resolved.model
    if cfg.weights is not None:
        load_weights(model, cfg.weights)
    elif cfg.backbone_weights is not None and isinstance(model, TransferNet):
        load_backbone_weights(model, cfg.backbone_weights)
    model.eval()
    shape = cfg.input_shape or resolved.input_shape
    return LoadedModel(model, resolved.name, shape, resolved.num_classes)
