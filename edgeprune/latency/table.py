"""The latency table: per-kernel statistics of repeated measurements, as versioned plain JSON.

One file per target and device; the kernels of each precision the device was profiled at (fp32, int8)
sit side by side, told apart by the precision in their keys. Each entry holds the kernel's time with the runtime's empty-call
overhead removed (see :mod:`edgeprune.latency.ort_profiler`):

* ``median_ms`` — the estimate the predictor uses: the *minimum over passes* of each pass's median
  (passes are spread in time; a minimum resists the slow drifts of a shared machine);
* ``p10_ms`` / ``p90_ms`` — percentiles of the pass with that minimum;
* ``spread`` — (max − min) / min of the pass medians, a noise indicator;
* ``count`` — timed runs in all passes; ``pass_medians_ms`` — every pass, so tables merge exactly.

Tables merge by concatenating pass lists (two machines' tables must come from the same device to be
merged; :meth:`LatencyTable.merge` refuses otherwise). No pickle anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.atomic import write_text_atomic
from edgeprune.config import read_document
from edgeprune.errors import ProfileError
from edgeprune.latency.kernels import KernelKey

TABLE_FORMAT = "edgeprune-latency-table"
TABLE_VERSION = 1
_REQUIRED_PROVENANCE = ("source", "device", "runtime", "runtime_version", "date", "method")


@dataclass
class Entry:
    """Statistics of one kernel (milliseconds)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    spread: float
    count: int
    pass_medians_ms: list[float] = field(default_factory=list)

    @classmethod
    def from_passes(cls, passes: list[tuple[float, float, float, int]]) -> Entry:
        """From ``(median, p10, p90, count)`` per pass."""
        best = min(passes, key=lambda p: p[0])
        medians = [p[0] for p in passes]
        lo = min(medians)
        spread = (max(medians) - lo) / lo if lo > 0 else 0.0
        return cls(best[0], best[1], best[2], spread, sum(p[3] for p in passes), medians)

    def to_dict(self) -> dict[str, Any]:
        return {
            "median_ms": round(self.median_ms, 6),
            "p10_ms": round(self.p10_ms, 6),
            "p90_ms": round(self.p90_ms, 6),
            "spread": round(self.spread, 4),
            "count": self.count,
            "pass_medians_ms": [round(m, 6) for m in self.pass_medians_ms],
        }


# the op of the entries that are not kernels: the empty call, and each profiled network's residual,
# whose variant is RESIDUAL_PREFIX + the op of the network's input kernel
OVERHEAD_KEY_OP = "overhead"
RESIDUAL_PREFIX = "net-"


def is_network_residual(key: KernelKey) -> bool:
    """Whether ``key`` holds a profiled network's ``T − K`` (its time minus its kernels' sum): the one
    kind of entry that may be negative (with several threads a network can run faster than its kernels
    timed alone)."""
    return key.op == OVERHEAD_KEY_OP and key.variant.startswith(RESIDUAL_PREFIX)


def _entry_from_dict(key: str, d: Any, where: str, signed: bool = False) -> Entry:
    if not isinstance(d, dict):
        raise ProfileError(f"{where}: entry {key!r} is not a mapping")
    try:
        e = Entry(
            float(d["median_ms"]),
            float(d["p10_ms"]),
            float(d["p90_ms"]),
            float(d.get("spread", 0.0)),
            int(d["count"]),
            [float(m) for m in d.get("pass_medians_ms", [])],
        )
    except KeyError as err:
        raise ProfileError(f"{where}: entry {key!r} is missing field {err.args[0]!r}") from None
    except (TypeError, ValueError):
        raise ProfileError(f"{where}: entry {key!r} has a non-numeric statistic") from None
    if not signed and (min(e.median_ms, e.p10_ms, e.p90_ms) < 0 or any(m < 0 for m in e.pass_medians_ms)):
        raise ProfileError(f"{where}: entry {key!r} has a negative latency ({e.median_ms} ms)")
    if e.count < 1:
        raise ProfileError(f"{where}: entry {key!r} has count {e.count}; at least one measurement is needed")
    return e


@dataclass
class LatencyTable:
    """Kernel key → :class:`Entry`, plus provenance (where, with what, how it was measured)."""

    provenance: dict[str, Any]
    entries: dict[KernelKey, Entry] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return str(self.provenance.get("source", "measured"))

    def get(self, key: KernelKey) -> Entry | None:
        return self.entries.get(key)

    @property
    def precisions(self) -> set[str]:
        """The precisions whose kernels this table holds (a file may hold several)."""
        return {k.precision for k in self.entries}

    def passes_of(self, key: KernelKey) -> int:
        e = self.entries.get(key)
        return len(e.pass_medians_ms) if e else 0

    def add_pass(self, key: KernelKey, median_ms: float, p10_ms: float, p90_ms: float, count: int) -> None:
        """Record one more pass of ``key`` (negative values from a noisy subtraction clamp to 0)."""
        m, lo10, hi90 = max(median_ms, 0.0), max(p10_ms, 0.0), max(p90_ms, 0.0)
        old = self.entries.get(key)
        if old is None:
            self.entries[key] = Entry.from_passes([(m, lo10, hi90, count)])
            return
        medians = [*old.pass_medians_ms, m]
        best = (m, lo10, hi90) if m < old.median_ms else (old.median_ms, old.p10_ms, old.p90_ms)
        lo = min(medians)
        spread = (max(medians) - lo) / lo if lo > 0 else 0.0
        self.entries[key] = Entry(best[0], best[1], best[2], spread, old.count + count, medians)

    def merge(self, other: LatencyTable) -> LatencyTable:
        """A table holding both tables' passes; both must come from the same device and runtime."""
        for f in ("device", "runtime", "runtime_version", "threads"):
            if self.provenance.get(f) != other.provenance.get(f):
                raise ProfileError(
                    f"cannot merge latency tables from different {f}: "
                    f"{self.provenance.get(f)!r} vs {other.provenance.get(f)!r}"
                )
        out = LatencyTable(dict(self.provenance), dict(self.entries))
        for key, e in other.entries.items():
            mine = out.entries.get(key)
            if mine is None:
                out.entries[key] = e
                continue
            best = e if e.median_ms < mine.median_ms else mine
            medians = mine.pass_medians_ms + e.pass_medians_ms
            lo = min(medians) if medians else best.median_ms
            spread = (max(medians) - lo) / lo if medians and lo > 0 else 0.0
            out.entries[key] = Entry(
                best.median_ms, best.p10_ms, best.p90_ms, spread, mine.count + e.count, medians
            )
        return out

    # --- files ---------------------------------------------------------------------------------------
    def to_json(self) -> str:
        data = {
            "format": TABLE_FORMAT,
            "version": TABLE_VERSION,
            "provenance": self.provenance,
            "entries": {str(k): e.to_dict() for k, e in sorted(self.entries.items())},
        }
        return json.dumps(data, indent=1, sort_keys=False) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write atomically (a crash never leaves half a table)."""
        return write_text_atomic(path, self.to_json())

    @classmethod
    def from_data(cls, data: Any, where: str) -> LatencyTable:
        if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
            raise ProfileError(f"{where}: not an edgeprune latency table (missing format: {TABLE_FORMAT})")
        if data.get("version") != TABLE_VERSION:
            raise ProfileError(
                f"{where}: latency table version {data.get('version')!r} is not supported (expected {TABLE_VERSION})"
            )
        prov = data.get("provenance")
        if not isinstance(prov, dict):
            raise ProfileError(f"{where}: latency table has no provenance")
        for f in _REQUIRED_PROVENANCE:
            if f not in prov:
                raise ProfileError(f"{where}: latency table provenance is missing field {f!r}")
        if prov["source"] not in ("measured", "estimate"):
            raise ProfileError(
                f"{where}: provenance source must be 'measured' or 'estimate', got {prov['source']!r}"
            )
        raw = data.get("entries")
        if not isinstance(raw, dict):
            raise ProfileError(f"{where}: latency table has no entries mapping")
        entries: dict[KernelKey, Entry] = {}
        for k, v in raw.items():
            try:
                key = KernelKey.parse(k)
            except ValueError as err:
                raise ProfileError(f"{where}: {err}") from None
            entries[key] = _entry_from_dict(k, v, where, signed=is_network_residual(key))
        return cls(prov, entries)

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read and validate a table; :class:`ProfileError` with one line when it is malformed."""
        return cls.from_data(read_document(path, "latency table", ProfileError), str(path))
