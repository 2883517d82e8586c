"""Hardware profiles: one validated YAML per target in ``hw_profiles/``, with its latency provenance.

A profile names the runtime, precision, threads (and whether idle worker threads spin, ``spinning``:
ONNX Runtime's default, on, unless the profile says ``spinning: false``), batch size and channel
multiple of a target, and where its latency figures come from:

* ``table: {source: measured, path: ...}`` — a per-kernel table measured on the device
  (:mod:`edgeprune.latency.table`; the file carries device, runtime version, date, method);
* ``estimate: {...}`` — a per-kernel roofline from the device's stated peak throughput and memory
  bandwidth (cited in the YAML), with efficiency factors fitted to published on-device measurements.

A measured profile may carry an ``estimate`` too: it is used only for networks whose kernel families
the table does not cover, and every such figure is labelled ``estimate``.

Profiles are found in ``$EDGEPRUNE_PROFILES_DIR``, then the source tree's ``hw_profiles/`` (editable
install, fresh clone), then ``<prefix>/share/edgeprune/hw_profiles`` (wheel install).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, ValidationError, field_validator

from edgeprune.config import FrozenConfig, describe_validation_error, read_document
from edgeprune.errors import ConfigError, ProfileError
from edgeprune.latency.runtimes import RUNTIME_KINDS, profiled_runtimes
from edgeprune.latency.timing import SPINNING_DEFAULT, threading_fields

PROFILES_ENV = "EDGEPRUNE_PROFILES_DIR"


class MeasuredTableRef(FrozenConfig):
    """A measured per-kernel table (path relative to the profile's directory)."""

    kind: ClassVar[str] = "measured-table"
    source: Literal["measured"] = "measured"
    path: str


class EstimateSpec(FrozenConfig):
    """A per-kernel roofline: ``t = max(macs·2/(peak·eff_c), bytes/(bw·eff_m)) + kernel overhead``.

    ``peak_gflops`` and ``bandwidth_gbps`` are the device's stated figures (``citations``); the
    efficiencies and overheads are fitted (``fitted_to``), with the hold-out error of that fit.
    """

    kind: ClassVar[str] = "estimate"
    source: Literal["estimate"] = "estimate"
    method: str
    peak_gflops: float = Field(gt=0)
    bandwidth_gbps: float = Field(gt=0)
    bytes_per_value: int = Field(default=4, ge=1, le=8)
    compute_efficiency: float = Field(gt=0, le=1.5)
    memory_efficiency: float = Field(gt=0, le=1.5)
    kernel_overhead_ms: float = Field(ge=0)
    call_overhead_ms: float = Field(ge=0)
    citations: tuple[str, ...] = Field(min_length=1)
    fitted_to: str
    holdout: dict[str, float] = Field(default_factory=dict)
    # judged against published batch-1 measurements of the device this profile names (rows never fitted
    # on): n, median_abs_pct_err, max_abs_pct_err, kendall_tau; see benchmarks/estimate_fit.py
    published_check: dict[str, float] = Field(default_factory=dict)
    # true when the estimate is not within 2x of the named device: figures rank networks, they are not
    # absolute latencies, and a --budget-ms against them is refused
    ranking_only: bool = False


class HardwareProfile(FrozenConfig):
    """A deployment target: runtime, precision, threads, batch, channel multiple, latency provenance."""

    kind: ClassVar[str] = "hardware-profile"
    version: int = 1
    name: str
    description: str
    device: str
    runtime: str
    precision: Literal["fp32", "fp16", "int8"]
    threads: int = Field(ge=1)
    # intra-op worker threads spin-wait between parallel sections (ONNX Runtime's default); false for a
    # machine shared with other work, where spinning workers steal its cores. Tables, the search, verify
    # and the shipped runner all run the target this way; with one thread it changes nothing.
    spinning: bool = SPINNING_DEFAULT
    batch_size: int = Field(default=1, ge=1)
    channel_multiple: int = Field(ge=1)
    channel_multiple_reason: str = ""
    # true when the target is the machine edgeprune runs on (host-cpu): its tables are matched against
    # this machine's fingerprint and compile measures what it needs here (edgeprune.latency.store)
    local: bool = False
    table: MeasuredTableRef | None = None
    estimate: EstimateSpec | None = None
    profile_dir: Path | None = Field(default=None, exclude=True)
    # the precision the profile's YAML states, when :meth:`with_precision` changed it (None: unchanged)
    yaml_precision: str | None = Field(default=None, exclude=True)

    @field_validator("runtime")
    @classmethod
    def _known_runtime(cls, v: str) -> str:
        """A runtime declared in :mod:`edgeprune.latency.runtimes` that has a latency profiler."""
        allowed = profiled_runtimes()
        if v not in allowed:
            what = "unknown runtime" if v not in RUNTIME_KINDS else "no latency profiler for runtime"
            raise ValueError(f"{what} {v!r} (a profile may name: {', '.join(allowed)})")
        return v

    def with_threads(self, threads: int) -> HardwareProfile:
        """This target at another thread count (a different target for tables: threads change kernels)."""
        if threads < 1:
            raise ProfileError(f"threads must be >= 1, got {threads}")
        if threads == self.threads:
            return self
        return self.model_copy(
            update={"threads": threads, "description": f"{self.description} ({threads} threads)"}
        )

    def with_spinning(self, spinning: bool) -> HardwareProfile:
        """This target with its idle intra-op threads spinning or asleep (another target for tables at
        several threads; the same at one thread, which has no worker threads)."""
        if spinning == self.spinning:
            return self
        state = "spinning" if spinning else "no spinning"
        return self.model_copy(update={"spinning": spinning, "description": f"{self.description} ({state})"})

    @property
    def threading(self) -> dict[str, object]:
        """How the target runs its threads, as tables record it: threads, and spinning with several."""
        return threading_fields(self.threads, self.spinning)

    def with_precision(self, precision: str) -> HardwareProfile:
        """This target running ``precision`` models: what a run searches for when it ships another
        precision than the profile's own (``compile --precision int8``).

        A table keeps each precision's kernels under their own keys, so a table serves this target only
        where it holds kernels of ``precision`` (:func:`edgeprune.latency.store.choose_table`). The
        profile's estimate is a roofline for its own precision: it is dropped, so figures for another
        precision are measured, never an estimate relabelled. A precision the runtime does not run is a
        :class:`ConfigError`.
        """
        if precision == self.precision:
            return self
        runs = RUNTIME_KINDS.get(self.runtime).precisions
        if precision not in runs:
            raise ConfigError(
                f"{self.name} cannot run {precision} models: {self.runtime} runs {', '.join(runs)}"
            )
        return self.model_copy(
            update={
                "precision": precision,
                "estimate": None,
                "description": f"{self.description} ({precision})",
                "yaml_precision": self.yaml_precision or self.precision,
            }
        )

    @property
    def precision_flag(self) -> str:
        """`` --precision P`` when this target runs another precision than its YAML states, else empty:
        what an ``edgeprune profile`` command for this target must add."""
        changed = self.yaml_precision is not None and self.yaml_precision != self.precision
        return f" --precision {self.precision}" if changed else ""


def profiles_dirs() -> list[Path]:
    """Directories searched for ``<target>.yaml``, first match wins."""
    out: list[Path] = []
    env = os.environ.get(PROFILES_ENV)
    if env:
        out.append(Path(env))
    out.append(Path(__file__).resolve().parents[2] / "hw_profiles")
    out.append(Path(sys.prefix) / "share" / "edgeprune" / "hw_profiles")
    return out


def _parse(path: Path) -> HardwareProfile:
    data = read_document(path, "profile", ProfileError)
    if not isinstance(data, dict):
        raise ProfileError(f"profile {path} must hold a mapping at top level")
    try:
        prof = HardwareProfile.model_validate({**data, "profile_dir": path.parent})
    except ValidationError as err:
        raise ProfileError(
            "malformed hardware profile " + describe_validation_error(err, str(path))
        ) from None
    if prof.table is None and prof.estimate is None:
        raise ProfileError(f"profile {path} has neither a measured table nor an estimate")
    return prof


def load_profile(name_or_path: str) -> HardwareProfile:
    """A profile by target name (``host-cpu``) or YAML path; :class:`ProfileError` if unknown/malformed."""
    candidate = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or candidate.is_file():
        if not candidate.is_file():
            raise ProfileError(f"profile file not found: {candidate}")
        return _parse(candidate)
    for d in profiles_dirs():
        p = d / f"{name_or_path}.yaml"
        if p.is_file():
            return _parse(p)
    known = sorted({p.name for p in list_profiles()})
    raise ProfileError(f"unknown target {name_or_path!r} (known: {', '.join(known) or 'none found'})")


def target_profile(
    name_or_path: str, threads: int | None = None, precision: str | None = None
) -> HardwareProfile:
    """The profile of a run's target, at ``threads`` when given (else the profile's own), running
    ``precision`` models when given and not ``auto`` (a run searches for the precision it ships)."""
    profile = load_profile(name_or_path)
    if threads is not None:
        profile = profile.with_threads(threads)
    if precision is not None and precision != "auto":
        profile = profile.with_precision(precision)
    return profile


def list_profiles() -> list[HardwareProfile]:
    """Every profile found, by name (the first directory holding a name wins)."""
    seen: dict[str, HardwareProfile] = {}
    for d in profiles_dirs():
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.yaml")):
            if p.stem not in seen:
                seen[p.stem] = _parse(p)
    return [seen[k] for k in sorted(seen)]
