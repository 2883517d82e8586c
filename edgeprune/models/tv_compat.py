"""The one place edgeprune imports torchvision.

The torchvision 0.28 wheel we pin beside the CPU build of torch links CUDA ops; importing it fails with
"operator torchvision::nms does not exist" because the op schemas were never registered. When (and
only when) that happens, we declare the two schemas torchvision's Python side looks up and import
again. Nothing here downloads anything; edgeprune never asks torchvision for pretrained weights.
"""

from __future__ import annotations

import contextlib
import importlib
from types import ModuleType
from typing import Any

_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
_library: Any = None  # keep the fragment alive for the life of the process


def _define_missing_schemas() -> None:
    global _library
    import torch

    if _library is not None:
        return
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        with contextlib.suppress(RuntimeError):  # already defined by a working build
            lib.define(f"{op}{_SCHEMA}")
    _library = lib


def import_torchvision() -> ModuleType:
    """Import and return ``torchvision``, registering the missing op schemas if the import needs them."""
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as err:
        if "torchvision::nms" not in str(err):
            raise
    import sys

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _define_missing_schemas()
    return importlib.import_module("torchvision")


def torchvision_models() -> ModuleType:
    """``torchvision.models``, through :func:`import_torchvision`."""
    tv = import_torchvision()
    return tv.models
