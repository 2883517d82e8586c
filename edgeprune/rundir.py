"""The run directory of ``edgeprune compile`` (DESIGN.md): its layout and its progress record.

``run.json`` records which stages have finished (written atomically after each), so ``--resume``
continues where a killed run stopped. A directory that holds anything but a run is never reused, and
an existing run is continued only with ``--resume``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.atomic import write_text_atomic
from edgeprune.errors import RunDirError

PICK_NAMES = ("accurate", "knee", "fast")
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
        """Refuse a file, a foreign non-empty directory, or an existing run without ``--resume``."""
        if self.root.exists() and not self.root.is_dir():
            raise RunDirError(f"--out {self.root} is a file, not a directory")
        has_run = self.state.exists()
        non_empty = self.root.is_dir() and any(self.root.iterdir())
        if resume and not has_run:
            raise RunDirError(f"nothing to resume in {self.root}: no run.json there")
        if not resume and non_empty:
            what = "holds a run; add --resume to continue it" if has_run else "is not empty"
            raise RunDirError(f"--out {self.root} {what}")

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
