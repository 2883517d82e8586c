"""``manifest.json`` of a pick: what an application needs to load it, and a checksum of every file.

Layout of a pick directory (written by :func:`edgeprune.export.pick.ship_pick`)::

    model.onnx          FP32 ONNX (opset >= 17), static batch unless asked otherwise
    model.int8.onnx     INT8 model (QOperator for ONNX Runtime CPU, QDQ for TensorRT), INT8 targets
    calibration.json    calibration ranges (edgeprune's table), INT8 targets
    calibration.cache   the same in TensorRT's calibration-cache format, INT8 targets
    model.pt2           AOTInductor package for the C++ LibTorch backend (optional)
    weights.pt          state_dict of the fine-tuned pick (tensors only)
    plan.json           the pruning plan that rebuilds the architecture from the base model
    buffers.pt          non-persistent buffers (the pruned option-A shortcut's 0/1 embedding), if any
    manifest.json       this file
    verify.json         written by ``edgeprune verify``

The C++ runner parses this file with a minimal reader: keep it flat JSON with the keys below.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from edgeprune.atomic import write_text_atomic
from edgeprune.config import read_document
from edgeprune.errors import VerificationError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    bytes: int
    sha256: str


class Manifest(BaseModel):
    """The parsed manifest of a pick."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())
    manifest_version: int = MANIFEST_VERSION
    model_name: str | None = None  # the model family / spec the pick was pruned from (rebuild: plan.json)
    files: dict[str, FileEntry]
    input_name: str
    input_shape: list[int]  # N, C, H, W (N = 1 unless exported with dynamic batch: then -1)
    input_dtype: str = "float32"
    input_layout: str = "NCHW"
    mean: list[float]  # per channel, on 0..1 pixels
    std: list[float]
    class_names: list[str]
    target: str
    precision: str
    expected_latency_ms: float | None
    latency_source: str  # measured | estimate
    # how the target runs intra-op threads: what expected_latency_ms holds for, and what the C++ runner
    # applies unless told otherwise (manifests written before these fields: 1 thread)
    threads: int = 1
    spinning: bool = True
    cpu_isa: str | None = None  # model.pt2 is tied to it


def write_manifest(
    pick_dir: Path, *, files: Sequence[str], input_name: str, input_shape: Sequence[int], dtype: str = "float32",
    mean: Sequence[float], std: Sequence[float], class_names: Sequence[str], target: str, precision: str,
    expected_latency_ms: float | None, latency_source: str, model_name: str | None = None, cpu_isa: str | None = None,
    threads: int = 1, spinning: bool = True,
) -> Path:  # fmt: skip
    """Write ``pick_dir/manifest.json`` listing ``files`` (names relative to ``pick_dir``) with size and sha256."""
    pick_dir = Path(pick_dir)
    entries = {}
    for name in sorted(set(files)):
        p = pick_dir / name
        if not p.is_file():
            raise VerificationError(f"cannot list {name} in the manifest: {p} does not exist")
        entries[name] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    m = Manifest(
        model_name=model_name, files=entries, input_name=input_name, input_shape=[int(d) for d in input_shape],  # type: ignore[arg-type]
        input_dtype=dtype, mean=[float(v) for v in mean], std=[float(v) for v in std], class_names=list(class_names),
        target=target, precision=precision, expected_latency_ms=expected_latency_ms, latency_source=latency_source,
        cpu_isa=cpu_isa, threads=threads, spinning=spinning,
    )  # fmt: skip
    return write_text_atomic(pick_dir / MANIFEST_NAME, json.dumps(m.model_dump(mode="json"), indent=1) + "\n")


def read_manifest(pick_dir: Path) -> Manifest:
    """Parse ``pick_dir/manifest.json``; missing or malformed is a :class:`VerificationError`."""
    path = Path(pick_dir) / MANIFEST_NAME
    if not path.is_file():
        raise VerificationError(f"no manifest.json in {pick_dir}")
    data = read_document(path, "manifest", VerificationError)
    try:
        return Manifest.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise VerificationError(f"{path}: field '{loc}': {first.get('msg')}") from None


def check_manifest(pick_dir: Path) -> Manifest:
    """Read the manifest and check every listed file's size and sha256; a mismatch is a :class:`VerificationError`."""
    m = read_manifest(pick_dir)
    for name, entry in m.files.items():
        p = Path(pick_dir) / name
        if not p.is_file():
            raise VerificationError(f"{p} is listed in the manifest but missing")
        if p.stat().st_size != entry.bytes or sha256_file(p) != entry.sha256:
            raise VerificationError(
                f"{p}: sha256 does not match manifest.json (the file changed or is corrupt)"
            )
    return m
