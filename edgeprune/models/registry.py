"""Model families: a registry of built-in networks, plus ``torchvision:NAME`` and ``module:factory``.

A family knows how to build an untrained network for a class count and its natural input shape.
Weights are loaded separately (:mod:`edgeprune.models.weights`), never downloaded.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from edgeprune.errors import ConfigError, ModelLoadError
from edgeprune.models.cifar_resnet import CifarResNet, cifar_resnet
from edgeprune.registry import Registry

Builder = Callable[[int], nn.Module]  # num_classes -> module


@dataclass(frozen=True)
class ModelFamily:
    """A built-in family: how to build it and what it expects."""

    name: str
    build: Builder
    input_shape: tuple[int, int, int]  # C, H, W
    num_classes: int
    description: str


FAMILIES: Registry[ModelFamily] = Registry("model family", error=ConfigError)
"""The built-in families by name (registered below)."""


def register_family(family: ModelFamily) -> ModelFamily:
    """Add a family under its name; a duplicate name is refused (``ValueError``)."""
    return FAMILIES.register(family.name, family)


def _cifar_builder(depth: int) -> Builder:
    return functools.partial(_build_cifar, depth)


def _build_cifar(depth: int, num_classes: int) -> nn.Module:
    return cifar_resnet(depth, num_classes=num_classes)


def _build_digits(num_classes: int) -> nn.Module:
    return CifarResNet((2, 2, 2), num_classes=num_classes, in_channels=1, widths=(16, 32, 64))


for _depth in (20, 32, 44, 56, 110):
    register_family(
        ModelFamily(
            name=f"resnet{_depth}",
            build=_cifar_builder(_depth),
            input_shape=(3, 32, 32),
            num_classes=10,
            description=f"CIFAR ResNet-{_depth} (He et al. 2016, option-A shortcut)",
        )
    )

register_family(
    ModelFamily(
        name="digits-resnet",
        build=_build_digits,
        input_shape=(1, 8, 8),
        num_classes=10,
        description="small CIFAR-style ResNet-14 for 8x8 grayscale digits (the default job)",
    )
)


@dataclass(frozen=True)
class ResolvedModel:
    """An untrained network and what it expects."""

    model: nn.Module
    name: str
    input_shape: tuple[int, int, int] | None
    num_classes: int


def _torchvision(name: str, num_classes: int) -> nn.Module:
    from edgeprune.models.tv_compat import torchvision_models

    tvm = torchvision_models()
    known = tvm.list_models(module=tvm)
    if name not in known:
        raise ConfigError(
            f"unknown torchvision classification model {name!r} (known: {', '.join(sorted(known)[:8])}, ...)"
        )
    try:
        return tvm.get_model(name, weights=None, num_classes=num_classes)
    except (TypeError, ValueError) as err:
        raise ModelLoadError(
            f"torchvision:{name} cannot be built with {num_classes} classes: {err}"
        ) from None


def _first_line(err: BaseException) -> str:
    return next((x.strip() for x in str(err).splitlines() if x.strip()), "(no message)")


def _factory(spec: str, num_classes: int | None) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelLoadError(f"cannot import model module {module_name!r}: {err}") from None
    except Exception as err:  # the user's module fails as it is imported (SyntaxError, ...): one line
        raise ModelLoadError(
            f"importing model module {module_name!r} failed: {type(err).__name__}: {_first_line(err)}"
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelLoadError(f"{module_name!r} has no callable {attr!r}")
    try:
        model = factory() if num_classes is None else factory(num_classes=num_classes)
    except Exception as err:  # the user's factory raised: one line naming it, not a traceback
        raise ModelLoadError(
            f"model factory {spec} failed: {type(err).__name__}: {_first_line(err)}"
        ) from None
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"model factory {spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def resolve_model(name: str, num_classes: int | None = None) -> ResolvedModel:
    """Build an untrained network from a family name, ``torchvision:NAME``, ``module:factory`` or
    ``transfer:BACKBONE:H`` (a backbone with a new FC head, see :mod:`edgeprune.models.transfer`)."""
    if name.startswith("torchvision:"):
        tv_name = name.split(":", 1)[1]
        k = num_classes or 1000
        return ResolvedModel(_torchvision(tv_name, k), name, None, k)
    if name.startswith("transfer:"):  # transfer:BACKBONE:H (edgeprune.models.transfer)
        from edgeprune.models.transfer import build_transfer_net, parse_transfer_spec

        backbone_name, hidden = parse_transfer_spec(name)
        backbone = resolve_model(backbone_name, None)
        k = num_classes or backbone.num_classes
        return ResolvedModel(build_transfer_net(backbone.model, k, hidden), name, backbone.input_shape, k)
    if name in FAMILIES:
        fam = FAMILIES.get(name)
        k = num_classes or fam.num_classes
        return ResolvedModel(fam.build(k), name, fam.input_shape, k)
    if ":" in name:
        model = _factory(name, num_classes)
        head = [m for m in model.modules() if isinstance(m, nn.Linear)]
        k = num_classes or (head[-1].out_features if head else 0)
        return ResolvedModel(model, name, None, k)
    raise ConfigError(
        f"unknown model {name!r}: use a family ({', '.join(FAMILIES.names())}), "
        "torchvision:NAME, or package.module:factory"
    )
