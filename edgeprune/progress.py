"""How long work reports progress: rich bars for people, JSON lines for scripts, nothing when quiet.

Every message also goes to the run's log file through :mod:`logging` (logger ``edgeprune``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

# ``on_progress(done, total, item)``: the callback long steps (kernel measurement) report through
ProgressCallback = Callable[[int, int, Any], None]

log = logging.getLogger("edgeprune")


class Reporter:
    """Silent reporter (``--quiet``); the base of the others. Messages still reach the log."""

    def stage(self, name: str, detail: str = "") -> None:
        log.info("stage %s %s", name, detail)

    def info(self, message: str) -> None:
        log.info(message)

    def search_started(self, total_generations: int) -> None:
        log.info("search: %d generations", total_generations)

    def generation(
        self, gen: int, total: int, n_evals: int, best_error: float, min_latency_ms: float
    ) -> None:
        log.info(
            "generation %d/%d evals=%d best_error=%.4f min_latency_ms=%.4f",
            gen,
            total,
            n_evals,
            best_error,
            min_latency_ms,
        )

    def evaluated(self, n: int) -> None:
        pass

    def search_finished(self) -> None:
        pass

    def progress(self, label: str) -> ProgressCallback:
        """A callback for a long step of ``total`` items; logs at the start and the end."""

        def update(done: int, total: int, item: Any) -> None:
            if done in (0, total):
                log.info("%s %d/%d", label, done, total)

        return update

    def result(self, payload: dict[str, Any]) -> None:
        log.info("result %s", json.dumps(payload, sort_keys=True))


class JsonReporter(Reporter):
    """One JSON object per line on stdout (``--json``)."""

    def _emit(self, event: str, **fields: Any) -> None:
        sys.stdout.write(
            json.dumps({"event": event, "time": round(time.time(), 3), **fields}, sort_keys=True) + "\n"
        )
        sys.stdout.flush()

    def stage(self, name: str, detail: str = "") -> None:
        super().stage(name, detail)
        self._emit("stage", stage=name, detail=detail)

    def info(self, message: str) -> None:
        super().info(message)
        self._emit("info", message=message)

    def generation(
        self, gen: int, total: int, n_evals: int, best_error: float, min_latency_ms: float
    ) -> None:
        super().generation(gen, total, n_evals, best_error, min_latency_ms)
        self._emit(
            "generation",
            generation=gen,
            total=total,
            n_evals=n_evals,
            best_error=best_error,
            min_latency_ms=min_latency_ms,
        )

    def result(self, payload: dict[str, Any]) -> None:
        super().result(payload)
        self._emit("result", **payload)

    def progress(self, label: str) -> ProgressCallback:
        """``progress`` events, at most one a second (and the last)."""
        last = [0.0]

        def update(done: int, total: int, item: Any) -> None:
            now = time.monotonic()
            if done == total or now - last[0] >= 1.0:
                last[0] = now
                self._emit("progress", label=label, done=done, total=total)

        return update


class RichReporter(Reporter):
    """Rich console output: a line per stage and a progress bar with ETA over the search."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self._progress: Any = None
        self._task: Any = None
        self._evals = 0

    def stage(self, name: str, detail: str = "") -> None:
        super().stage(name, detail)
        self.console.print(f"[bold cyan]{name}[/] {detail}")

    def info(self, message: str) -> None:
        super().info(message)
        self.console.print(f"  {message}")

    def search_started(self, total_generations: int) -> None:
        super().search_started(total_generations)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("  generation"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=self.console, transient=False,
        )  # fmt: skip
        self._progress.start()
        self._task = self._progress.add_task("search", total=total_generations, status="starting")

    def evaluated(self, n: int) -> None:
        self._evals += n
        if self._progress is not None:
            self._progress.update(self._task, status=f"evals {self._evals}")

    def generation(
        self, gen: int, total: int, n_evals: int, best_error: float, min_latency_ms: float
    ) -> None:
        super().generation(gen, total, n_evals, best_error, min_latency_ms)
        if self._progress is not None:
            status = f"evals {n_evals}  best error {best_error:.2%}  fastest {min_latency_ms:.3f} ms"
            self._progress.update(self._task, completed=gen, status=status)

    def search_finished(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def progress(self, label: str) -> ProgressCallback:
        """A rich bar with ETA, closed when ``done`` reaches ``total``."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn(f"  {label}"), BarColumn(), MofNCompleteColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=self.console,
        )  # fmt: skip
        task = bar.add_task(label, total=None)
        bar.start()

        def update(done: int, total: int, item: Any) -> None:
            bar.update(task, completed=done, total=total)
            if done >= total:
                bar.stop()

        return update


def attach_log_file(path: str) -> logging.Handler:
    """Send the ``edgeprune`` logger to ``path`` (appending, so a resumed run keeps its history)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler
