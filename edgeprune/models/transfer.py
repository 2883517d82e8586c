"""Transfer-learning networks (MO-EvoPruneDeepTL): a pretrained backbone with a new sparse FC head.

The backbone's classifier (its last ``nn.Linear``) is replaced by ``Identity`` and a head
``Linear(features -> H), ReLU, Linear(H -> classes)`` is put on top. The hidden layer is an ordinary
channel group to the analysis (``head.0``, kind ``other``), so the search space gives its active
neurons a keep gene next to the backbone's pruning genes.

A transfer network is named by a spec, ``transfer:BACKBONE:H`` (e.g. ``transfer:resnet20:64``): the
name written into pick manifests, from which ``build_model`` rebuilds the (untrained) architecture.
What is frozen is decided by the caller: :func:`freeze_backbone` freezes every backbone parameter and
keeps the backbone in eval mode (fixed BatchNorm statistics) while the head trains.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from edgeprune.config import ModelConfig
from edgeprune.errors import ConfigError, ModelLoadError

TRANSFER_PREFIX = "transfer:"
DEFAULT_HEAD_SEED = 0


class TransferNet(nn.Module):
    """``head(backbone(x))``: a backbone whose classifier became ``Identity``, and a new FC head."""

    def __init__(
        self, backbone: nn.Module, features: int, hidden: int, num_classes: int, dropped: str, seed: int = 0
    ):
        super().__init__()
        self.backbone = backbone
        hidden_layer = nn.utils.skip_init(nn.Linear, features, hidden)  # no global RNG: seeded below
        out_layer = nn.utils.skip_init(nn.Linear, hidden, num_classes)
        self.head = nn.Sequential(hidden_layer, nn.ReLU(), out_layer)
        self.dropped_classifier = dropped  # the old classifier, e.g. "linear" (ignored when loading)
        self.backbone_frozen = False
        gen = torch.Generator().manual_seed(int(seed))
        for layer in (hidden_layer, out_layer):
            nn.init.kaiming_uniform_(layer.weight, a=5**0.5, generator=gen)  # torch's nn.Linear default
            bound = 1.0 / layer.in_features**0.5
            with torch.no_grad():
                layer.bias.uniform_(-bound, bound, generator=gen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def train(self, mode: bool = True) -> TransferNet:
        """As ``nn.Module.train``, but a frozen backbone stays in eval mode (its BN statistics fixed)."""
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self


def transfer_spec(cfg: ModelConfig) -> str:
    """The name that rebuilds ``cfg``'s architecture: ``transfer:BACKBONE:H`` in transfer mode, else ``cfg.name``."""
    if not cfg.transfer or cfg.name.startswith(TRANSFER_PREFIX):
        return cfg.name
    return f"{TRANSFER_PREFIX}{cfg.name}:{cfg.head_hidden}"


def parse_transfer_spec(name: str) -> tuple[str, int]:
    """``transfer:BACKBONE:H`` -> (BACKBONE, H); BACKBONE may itself hold a colon (``torchvision:resnet18``)."""
    body = name.removeprefix(TRANSFER_PREFIX)
    backbone, sep, hidden = body.rpartition(":")
    if not sep or not backbone or not hidden.isdigit() or int(hidden) < 1:
        raise ConfigError(
            f"bad transfer model name {name!r}: expected transfer:BACKBONE:HIDDEN, e.g. transfer:resnet20:64"
        )
    return backbone, int(hidden)


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ModelLoadError(
            f"{type(model).__name__} has no nn.Linear classifier to replace by a transfer head"
        )
    return linears[-1]


def _set_module(root: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, leaf = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, leaf, new)


def build_transfer_net(
    backbone: nn.Module, num_classes: int, hidden: int, seed: int = DEFAULT_HEAD_SEED
) -> TransferNet:
    """Replace ``backbone``'s last ``nn.Linear`` by ``Identity`` and add a fresh, seeded head."""
    name, linear = _last_linear(backbone)
    _set_module(backbone, name, nn.Identity())
    return TransferNet(backbone, linear.in_features, hidden, num_classes, dropped=name, seed=seed).eval()


def load_backbone_weights(net: TransferNet, path: str | Path) -> TransferNet:
    """Load a pretrained network's weights into ``net.backbone``: its old classifier's entries are
    ignored, every other key must match (the error names the first offending parameter)."""
    from edgeprune.models.weights import load_state_into, read_state_dict

    path = Path(path)
    dropped = net.dropped_classifier + "."
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(dropped)}
    load_state_into(net.backbone, state, path, hint="are they weights of a different family?")
    return net


def freeze_backbone(net: nn.Module) -> TransferNet:
    """Freeze every backbone parameter and keep the backbone in eval mode; the head stays trainable."""
    if not isinstance(net, TransferNet):
        raise ConfigError(f"transfer mode needs a TransferNet, got {type(net).__name__}")
    for p in net.backbone.parameters():
        p.requires_grad_(False)
    for p in net.head.parameters():
        p.requires_grad_(True)
    net.backbone_frozen = True
    net.backbone.eval()
    return net


def _batches(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for i in range(0, len(x), batch_size):
        yield x[i : i + batch_size]


def backbone_features(net: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The (frozen, eval-mode) backbone's features of ``x``: what the head sees, computed once."""
    if not isinstance(net, TransferNet):
        raise ConfigError(f"transfer mode needs a TransferNet, got {type(net).__name__}")
    was_training = net.backbone.training
    net.backbone.eval()
    with torch.no_grad():
        out = torch.cat([net.backbone(xb) for xb in _batches(x, batch_size)])
    net.backbone.train(was_training)
    return out


def head_hidden_kept(net: nn.Module) -> int:
    """Active hidden neurons of a (possibly pruned) transfer head."""
    if not isinstance(net, TransferNet):
        raise ConfigError(f"not a transfer network: {type(net).__name__}")
    hidden = net.head[0]
    if not isinstance(hidden, nn.Linear):
        raise ConfigError("a transfer head starts with an nn.Linear")
    return int(hidden.out_features)
