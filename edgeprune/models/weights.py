"""Load weights files safely: ``torch.load(weights_only=True)`` and nothing else.

Accepted layouts: a plain state dict, ``{"state_dict": ...}`` or ``{"model": ...}`` wrappers, and
``module.`` prefixes from DataParallel. A file whose unpickling would need arbitrary code is refused
(never executed). Missing keys and shape mismatches name the first offending parameter.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeprune.errors import ModelLoadError

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file into a flat ``name -> tensor`` dict without executing pickled code."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"weights file not found: {path}")
    if path.is_dir():
        raise ModelLoadError(f"weights path is a directory, not a file: {path}")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unsafe pickle"
        if "Weights only load failed" in str(err) or "Unsupported" in str(err):
            raise ModelLoadError(
                f"refusing {path}: it needs arbitrary pickled code to load (weights_only=True refused it); "
                "save a plain state_dict instead"
            ) from None
        raise ModelLoadError(f"weights file {path} is corrupt: {first}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"weights file {path} is corrupt or truncated: {msg}") from None
    for key in _WRAPPER_KEYS:
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise ModelLoadError(f"weights file {path} holds no state dict")
    state: dict[str, torch.Tensor] = {}
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise ModelLoadError(f"weights file {path}: entry {name!r} is not a tensor")
        state[name.removeprefix("module.")] = value
    return state


def load_state_into(
    module: nn.Module, state: dict[str, torch.Tensor], path: str | Path, hint: str = ""
) -> nn.Module:
    """Load ``state`` (read from ``path``) into ``module`` strictly, ``num_batches_tracked`` optional.

    A missing key, a shape mismatch or an unexpected key raises :class:`ModelLoadError` naming the
    first offending parameter (``hint`` is appended to the missing/unexpected messages).
    """
    tail = f"; {hint}" if hint else ""
    own = module.state_dict()
    state = dict(state)
    for name, tensor in own.items():
        if name not in state:
            if name.endswith("num_batches_tracked"):
                state[name] = tensor
                continue
            raise ModelLoadError(
                f"weights file {path} has no parameter {name!r} (expected shape {tuple(tensor.shape)}){tail}"
            )
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ModelLoadError(
                f"parameter {name!r}: weights file has shape {tuple(state[name].shape)}, "
                f"model expects {tuple(tensor.shape)}"
            )
    unexpected = [k for k in state if k not in own]
    if unexpected:
        raise ModelLoadError(
            f"weights file {path} has parameter {unexpected[0]!r} the model does not have{tail}"
        )
    module.load_state_dict(state, strict=True)
    return module


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load ``path`` into ``model`` in place (strict, ``num_batches_tracked`` optional) and return it."""
    return load_state_into(model, read_state_dict(path), path)
