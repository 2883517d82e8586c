"""The run directory of ``edgeprune compile`` (docs/reference/run-directory.md): its layout and its progress record.

``run.json`` records which stages have finished (written atomically after each), so ``--resume``
continues where a killed run stopped. A directory that holds anything but a run is never reused, and
an existing run is continued only with ``--resume``. A run directory appears in one step
(:meth:`RunDir.create`: staged beside it, then renamed) once its inputs are validated and its base
network exists, so it always holds a resumable run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edgeprune.atomic import fsync_dir, make_dirs, write_bytes_atomic, write_text_atomic
from edgeprune.errors import RunDirError

PickName = Literal["accurate", "knee", "fast"]
PICK_NAMES: tuple[PickName, ...] = ("accurate", "knee", "fast")
STATE_VERSION = 1


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def state(self) -> Path:
        return self.root / "run.json"

    @property
    def log(self) -> Path:
        return self.root / "edgeprune.log"

    @property
    def search(self) -> Path:
        return self.root / "search"

    @property
    def pareto_csv(self) -> Path:
        return self.root / "pareto.csv"

    @property
    def pareto_png(self) -> Path:
        return self.root / "pareto.png"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def base_weights(self) -> Path:
        """The network the search prunes (a copy of the user's weights, or the default job's training)."""
        return self.root / "base" / "weights.pt"

    def pick(self, name: str) -> Path:
        return self.root / "picks" / name

    # --- lifecycle ---------------------------------------------------------------------------------
    def check_usable(self, resume: bool) -> None:
        """Refuse a file, a foreign non-empty directory, an existing run without ``--resume``, or a
        directory that cannot be created; reads only."""
        if self.root.exists() and not self.root.is_dir():
            raise RunDirError(f"--out {self.root} is a file, not a directory")
        has_run = self.state.exists()
        try:
            non_empty = self.root.is_dir() and any(self.root.iterdir())
        except OSError as err:
            raise RunDirError(f"--out {self.root} cannot be read: {err.strerror or err}") from None
        if resume and not has_run:
            raise RunDirError(f"nothing to resume in {self.root}: no run.json there")
        if not resume and non_empty:
            what = "holds a run; add --resume to continue it" if has_run else "is not empty"
            raise RunDirError(f"--out {self.root} {what}")
        # a new run directory is made beside itself and renamed into place: its parent must take it
        if self.root.exists():
            need = [self.root] if resume else [self.root, self.root.parent]
        else:
            ancestor = self.root.parent
            while not ancestor.exists() and ancestor != ancestor.parent:
                ancestor = ancestor.parent
            if not ancestor.is_dir():
                raise RunDirError(f"cannot create --out {self.root}: {ancestor} is a file, not a directory")
            need = [ancestor]
        for d in need:
            if not os.access(d, os.W_OK | os.X_OK):
                raise RunDirError(f"cannot write --out {self.root}: {d} is not writable")

    def create(self, files: Mapping[str, bytes], prepare_info: dict[str, Any]) -> None:
        """Make the run directory in one step: ``files`` (relative path -> bytes) and a ``run.json``
        recording ``prepare`` as done are written into a hidden sibling directory, which is then renamed
        to :attr:`root` (replacing an empty directory there). Either the whole run directory exists or
        none of it does."""
        try:
            make_dirs(self.root.parent)
            staging = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.creating-", dir=self.root.parent))
        except OSError as err:
            raise RunDirError(f"cannot create --out {self.root}: {err.strerror or err}") from None
        try:
            for rel, data in files.items():
                write_bytes_atomic(staging / rel, data)
            state = {"version": STATE_VERSION, "done": {"prepare": prepare_info}}
            write_text_atomic(staging / self.state.name, json.dumps(state, indent=1, sort_keys=True))
            if self.root.is_dir():
                self.root.rmdir()  # an empty directory (check_usable refuses any other)
            os.rename(staging, self.root)
        except OSError as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise RunDirError(f"cannot create --out {self.root}: {err.strerror or err}") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_dir(self.root.parent)  # the rename itself survives a power cut

    def finished(self, prefix: str) -> list[str]:
        """Stages recorded as done whose name is ``prefix`` or starts with ``prefix:``."""
        return [s for s in self.read_state()["done"] if s == prefix or s.startswith(prefix + ":")]

    def forget(self, *stages: str) -> None:
        """Drop stages from the progress record (their work is to be redone)."""
        state = self.read_state()
        for stage in stages:
            state["done"].pop(stage, None)
        write_text_atomic(self.state, json.dumps(state, indent=1, sort_keys=True))

    def read_state(self) -> dict[str, Any]:
        if not self.state.exists():
            return {"version": STATE_VERSION, "done": {}}
        try:
            state = json.loads(self.state.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise RunDirError(f"{self.state} is unreadable: {err}") from None
        if (
            not isinstance(state, dict)
            or state.get("version") != STATE_VERSION
            or not isinstance(state.get("done"), dict)
        ):
            raise RunDirError(f"{self.state} is not an edgeprune run record")
        return state

    def mark_done(self, stage: str, info: dict[str, Any] | None = None) -> None:
        state = self.read_state()
        state["done"][stage] = info or {}
        write_text_atomic(self.state, json.dumps(state, indent=1, sort_keys=True))

    def is_done(self, stage: str) -> bool:
        return stage in self.read_state()["done"]

    def done_info(self, stage: str) -> dict[str, Any]:
        return dict(self.read_state()["done"].get(stage, {}))
