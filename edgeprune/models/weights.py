"""Load weights files safely: ``torch.load(weights_only=True)`` and nothing else.

Accepted layouts: a plain state dict, ``{"state_dict": ...}`` or ``{"model": ...}`` wrappers, and
``module.`` prefixes from DataParallel. A file whose unpickling would need arbitrary code is refused
(never executed). Missing keys and shape mismatches name the first offending parameter.

Reading is total: whatever a file holds (truncated at any byte, flipped bits, zeros, another
framework's format, random bytes), :func:`read_state_dict` returns a state dict or raises one-line
:class:`ModelLoadError` naming the file and the likely cause; nothing else escapes it.
"""

from __future__ import annotations

import pickle
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeprune.errors import ModelLoadError

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
_SAVE_HINT = "save a plain state dict with torch.save(model.state_dict(), PATH)"
# words of torch's weights-only unpickler when a file needs code it will not run
_UNSAFE_MARKERS = ("Unsupported global", "Can only create new object", "Can only build", "is blocked",
                   "Trying to call reduce")  # fmt: skip
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SNIFF_BYTES = 4096


# the magic number torch.save's legacy (non-zip) format pickles first
_TORCH_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n" for c in text)


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(_ANSI.sub("", text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _zip_names(path: Path) -> list[str] | None:
    """Member names of a zip archive, or None when its directory cannot be read (torch will say)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except Exception:  # a truncated or corrupt archive: torch's reader gives the detailed error
        return None


def _foreign_format(path: Path, head: bytes) -> str | None:
    """What ``path`` is when it is plainly not a torch.save file (another framework's format), else None."""
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return (
            "an HDF5 file (Keras/TensorFlow .h5 weights?), not a PyTorch state dict; convert it and "
            + _SAVE_HINT
        )
    if head[4:8] == b"TFL3":
        return "a TensorFlow Lite model, not a PyTorch state dict"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed; decompress it first"
    if head.startswith((b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")):
        return "compressed (bzip2/xz/zstd); decompress it first"
    if path.suffix.lower() == ".onnx" or (
        head[:1] == b"\x08" and any(w in head[:64] for w in (b"pytorch", b"onnx", b"tf2onnx", b"skl2onnx"))
    ):
        return "an ONNX model, not a PyTorch state dict; give the weights the ONNX file was exported from"
    if len(head) >= 10 and head[8:10] == b'{"' and path.suffix.lower() != ".safetensors":
        return "a safetensors file, not a torch.save file; " + _SAVE_HINT
    if head[:1] == b"\x80" and len(head) >= 2:  # a pickle: torch's legacy format is one too
        if head[1] > pickle.HIGHEST_PROTOCOL:
            return (
                f"written with pickle protocol {head[1]}, newer than this Python reads "
                f"(up to {pickle.HIGHEST_PROTOCOL}); " + _SAVE_HINT + " with this Python's torch"
            )
        if _TORCH_MAGIC not in head[:32]:
            return "a plain Python pickle, not a torch.save file (or its header is corrupt); " + _SAVE_HINT
    if _is_text(head):
        return "a text file, not PyTorch weights"
    if head.startswith(b"PK"):
        names = _zip_names(path)
        if names is None:
            return None
        base = {n.rsplit("/", 1)[-1] for n in names}
        if any(n.rstrip("/").endswith("code") or "/code/" in n for n in names) and "constants.pkl" in base:
            return "a TorchScript archive (torch.jit.save), not a state dict; " + _SAVE_HINT
        if names and all(n.endswith(".npy") for n in names):
            return "a NumPy .npz archive, not a PyTorch state dict; " + _SAVE_HINT
        if "model.weights.h5" in base or "saved_model.pb" in base:
            return "a Keras/TensorFlow archive, not a PyTorch state dict"
        if "data.pkl" not in base:
            return "a zip archive without the data.pkl of a torch.save file, not PyTorch weights"
    return None


def _unpickling_reason(err: BaseException) -> str:
    """The useful line of torch's weights-only unpickler message (it wraps the cause in advice)."""
    lines = [_one_line(x) for x in str(err).splitlines() if x.strip()]
    for line in lines:
        if "WeightsUnpickler error:" in line:
            tail = line.split("WeightsUnpickler error:", 1)[1].strip()
            if tail:
                return tail
    skip = ("Weights only load failed", "(1)", "(2)", "Please file an issue", "Check the documentation")
    useful = [x for x in lines if not x.startswith(skip) and "weights_only" not in x]
    return useful[0] if useful else (lines[0] if lines else type(err).__name__)


def _describe(err: BaseException) -> str:
    if isinstance(err, pickle.UnpicklingError):
        return _one_line(_unpickling_reason(err))
    first = next((x for x in str(err).splitlines() if x.strip()), "")
    if isinstance(err, EOFError | struct.error) or "unexpected EOF" in first:
        kind = "struct.error" if isinstance(err, struct.error) else type(err).__name__
        return f"it ends early ({kind}{': ' + _one_line(first, 80) if first else ''})"
    if "Invalid magic number" in first:
        return "it is not a torch.save file (a plain pickle?)"
    if "PytorchStreamReader" in first or "failed finding central directory" in first:
        return _one_line(first.split(". This is an internal")[0], 120)
    if isinstance(err, MemoryError):
        return "it claims more memory than this machine has (a corrupt size field)"
    return f"{type(err).__name__}: {_one_line(first, 120)}" if first else type(err).__name__


def _torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)``: its many failure modes (EOFError, struct.error, KeyError, zip
    and pickle errors, ...) all end here as one ModelLoadError; interrupts pass through."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns on some corrupt files: the error says it all
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _unpickling_reason(err)
        if any(m in reason for m in _UNSAFE_MARKERS):
            raise ModelLoadError(
                f"refusing {path}: it needs arbitrary pickled code to load (weights_only=True refused it: "
                f"{_one_line(reason, 100)}); {_SAVE_HINT}"
            ) from None
        if reason.startswith("Unsupported operand 149"):  # FRAME: pickle protocol 4+ in the legacy format
            raise ModelLoadError(
                f"weights file {path} uses torch's legacy format with pickle protocol 4 or newer, which safe "
                f"loading cannot read (or it is corrupt); {_SAVE_HINT} and the default protocol"
            ) from None
        raise ModelLoadError(
            f"weights file {path} is corrupt or truncated, or not a torch.save file: {_one_line(reason, 120)}"
        ) from None
    except Exception as err:  # the one boundary where a bad file's every failure becomes one line
        if "TorchScript" in str(err):
            raise ModelLoadError(
                f"weights file {path} is a TorchScript archive (torch.jit.save), not a state dict; {_SAVE_HINT}"
            ) from None
        if "safetensors" in str(err):
            raise ModelLoadError(
                f"weights file {path} is a safetensors file and the safetensors package is not installed; "
                f"install it or {_SAVE_HINT}"
            ) from None
        raise ModelLoadError(f"weights file {path} is corrupt or truncated: {_describe(err)}") from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file into a flat ``name -> tensor`` dict without executing pickled code.

    Any failure is a one-line :class:`ModelLoadError` naming ``path`` and the likely cause.
    """
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"weights file not found: {path}")
    if path.is_dir():
        raise ModelLoadError(f"weights path is a directory, not a file: {path}")
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as err:
        raise ModelLoadError(f"weights file {path} cannot be read: {err.strerror or err}") from None
    if size == 0:
        raise ModelLoadError(f"weights file {path} is empty (0 bytes): an interrupted copy or download?")
    if not head.strip(b"\x00"):
        raise ModelLoadError(
            f"weights file {path} holds only zero bytes: an interrupted copy or download, or a corrupt disk?"
        )
    foreign = _foreign_format(path, head)
    if foreign is not None:
        raise ModelLoadError(f"weights file {path} is {foreign}")
    obj = _torch_load(path)
    for key in _WRAPPER_KEYS:
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj:
        what = "an empty mapping" if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
        raise ModelLoadError(f"weights file {path} holds no state dict ({what}); {_SAVE_HINT}")
    state: dict[str, torch.Tensor] = {}
    for name, value in obj.items():
        if not isinstance(name, str):
            raise ModelLoadError(
                f"weights file {path} is corrupt: a parameter name is {name!r}, not a string"
            )
        if not isinstance(value, torch.Tensor):
            raise ModelLoadError(f"weights file {path}: entry {name!r} is not a tensor")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ModelLoadError(
                f"weights file {path}: parameter {name!r} holds NaN or infinite values (a corrupt file, "
                "or a diverged training run)"
            )
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
                f"model expects {tuple(tensor.shape)} ({path})"
            )
    unexpected = [k for k in state if k not in own]
    if unexpected:
        raise ModelLoadError(
            f"weights file {path} has parameter {unexpected[0]!r} the model does not have{tail}"
        )
    try:
        module.load_state_dict(state, strict=True)
    except Exception as err:  # e.g. a tensor whose dtype cannot be copied into the parameter
        first = next((x for x in str(err).splitlines() if x.strip()), type(err).__name__)
        raise ModelLoadError(
            f"weights file {path} does not load into the model: {_one_line(first)}"
        ) from None
    return module


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load ``path`` into ``model`` in place (strict, ``num_batches_tracked`` optional) and return it."""
    return load_state_into(model, read_state_dict(path), path)
