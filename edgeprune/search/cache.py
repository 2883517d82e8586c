"""The evaluation cache: plan key -> (plan, metrics), persisted as append-only JSON lines.

It is plain data (no pickle). Each record is flushed and fsync'ed as it is written, so a SIGKILL
loses at most the evaluation in flight; a torn last line is ignored on load.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO


class EvaluationCache:
    """``plan_key -> metrics`` in memory, mirrored to ``path`` (if given)."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._data: dict[str, dict[str, float]] = {}
        self._plans: dict[str, str] = {}
        self._handle: IO[str] | None = None
        self.hits = 0
        self.misses = 0
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        good = 0
        with path.open("rb") as f:
            for raw in f:
                try:
                    rec = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    break  # a torn last line from a killed run
                if not raw.endswith(b"\n"):
                    break
                self._data[rec["key"]] = rec["metrics"]
                self._plans[rec["key"]] = rec["plan"]
                good += len(raw)
        if good != path.stat().st_size:  # drop the torn tail so appends stay well-formed
            with path.open("r+b") as f:
                f.truncate(good)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> dict[str, float] | None:
        """Metrics for ``key`` or None; counts hits and misses."""
        rec = self._data.get(key)
        if rec is None:
            self.misses += 1
        else:
            self.hits += 1
        return rec

    def put(self, key: str, plan_json: str, metrics: dict[str, float]) -> None:
        """Store and persist one record."""
        if key in self._data:
            return
        self._data[key] = metrics
        self._plans[key] = plan_json
        if self.path is None:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(
            json.dumps({"key": key, "plan": plan_json, "metrics": metrics}, sort_keys=True) + "\n"
        )
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def items(self) -> list[tuple[str, str, dict[str, float]]]:
        """(key, plan JSON, metrics) in insertion order."""
        return [(k, self._plans[k], m) for k, m in self._data.items()]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
