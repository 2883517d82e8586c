"""Where latency tables live, and which one belongs to the device a figure is for.

A table is only valid on the device it was measured on: two machines with the same CPU name have
been seen to differ by a third. Every table records the fingerprint of its device
(:mod:`edgeprune.latency.timing`), and the tables a user measures are kept in a user data directory —
``$EDGEPRUNE_HOME`` (default: the platform's user data directory, e.g. ``~/.local/share/edgeprune``)
— as ``tables/<target>/<fingerprint id>.json``, never inside the installed package.

:func:`choose_table` picks the table of a target:

* a *local* target (``host-cpu``: the machine edgeprune runs on) uses the table whose fingerprint is
  this machine's — ``measured``; any other table of the target (another machine's, or the reference
  shipped with the profile) is ``measured elsewhere``, and ``compile`` measures what it needs here
  before the search;
* a device target (``jetson-orin``, ``mobile-cpu``, …) cannot be fingerprinted from the workstation:
  a table the user measured on the device (directly or through ``edgeprune agent``) is ``measured``
  (its fingerprint names the device), a table shipped with the package is ``measured elsewhere``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edgeprune.errors import ProfileError
from edgeprune.latency.profile import HardwareProfile
from edgeprune.latency.table import LatencyTable
from edgeprune.latency.timing import threading_fields

HOME_ENV = "EDGEPRUNE_HOME"
Status = Literal["measured", "measured elsewhere", "missing"]
MEASURED: Status = "measured"
ELSEWHERE: Status = "measured elsewhere"


def edgeprune_home() -> Path:
    """The user data directory: ``$EDGEPRUNE_HOME``, else the platform's (platformdirs)."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("edgeprune", appauthor=False))


def user_tables_dir(target: str) -> Path:
    """Tables of ``target`` measured by this user, one file per device fingerprint."""
    return edgeprune_home() / "tables" / target


def local_fingerprint(profile: HardwareProfile) -> dict[str, Any] | None:
    """The fingerprint this machine has for ``profile`` when the target is this machine, else None."""
    if not profile.local:
        return None
    if profile.runtime == "onnxruntime-cpu":
        from edgeprune.latency.timing import ort_cpu_fingerprint

        return ort_cpu_fingerprint(profile.threads, profile.spinning)
    if profile.runtime == "tensorrt":
        from edgeprune.latency.tensorrt_profiler import gpu_fingerprint

        return gpu_fingerprint(profile.precision)
    return None


def table_path_for(profile: HardwareProfile, fingerprint: dict[str, Any]) -> Path:
    """Where the user's table of ``profile`` on the device with ``fingerprint`` lives."""
    from edgeprune.latency.timing import fingerprint_id

    return user_tables_dir(profile.name) / f"{fingerprint_id(fingerprint)}.json"


def own_table_path(profile: HardwareProfile) -> Path:
    """Where this machine's table of a local target lives (it may not exist yet)."""
    fp = local_fingerprint(profile)
    if fp is None:
        raise ProfileError(f"{profile.name} is not measured on this machine; profile it on the device")
    return table_path_for(profile, fp)


def reference_table_path(profile: HardwareProfile) -> Path | None:
    """The table the profile itself names (shipped with the package, or set in a user's profile YAML)."""
    if profile.table is None:
        return None
    p = Path(profile.table.path)
    return p if p.is_absolute() else (profile.profile_dir or Path.cwd()) / p


@dataclass(frozen=True)
class TableChoice:
    """The table a target's figures come from, and what it is to this machine."""

    status: Status
    path: Path | None = None
    table: LatencyTable | None = None
    note: str = ""

    @property
    def fingerprint(self) -> dict[str, Any] | None:
        return None if self.table is None else self.table.provenance.get("fingerprint")


def device_line(table: LatencyTable) -> str:
    """The device a table was measured on, for people (its fingerprint, else its recorded device line)."""
    from edgeprune.latency.timing import describe_fingerprint

    fp = table.provenance.get("fingerprint")
    return describe_fingerprint(fp) if fp else f"{table.provenance.get('device')}, no fingerprint"


def _newest(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: p.stat().st_mtime, reverse=True)


def table_files(profile: HardwareProfile) -> list[Path]:
    """Every table of ``profile``: the user's (newest first), then the profile's reference table."""
    d = user_tables_dir(profile.name)
    out = _newest([p for p in d.glob("*.json") if p.is_file()]) if d.is_dir() else []
    ref = reference_table_path(profile)
    if ref is not None and ref.is_file():
        out.append(ref)
    return out


def _what(profile: HardwareProfile) -> str:
    """``host-cpu``, or ``host-cpu int8`` when the target runs another precision than its YAML states."""
    return f"{profile.name} {profile.precision}" if profile.precision_flag else profile.name


def choose_table(profile: HardwareProfile) -> TableChoice:
    """The table for ``profile`` on this machine (see the module docstring); never invents one.

    Only a table holding kernels of the profile's precision serves it: one file keeps every precision
    its device was profiled at, so this machine's FP32 table is not its INT8 table until INT8 kernels
    were measured into it."""
    from edgeprune.latency.timing import describe_fingerprint

    here = local_fingerprint(profile)
    files = table_files(profile)
    what = _what(profile)

    def serves(table: LatencyTable) -> bool:
        return profile.precision in table.precisions

    if here is not None:
        own = table_path_for(profile, here)
        own_lacks = False
        if own.is_file():
            table = LatencyTable.load(own)
            if table.provenance.get("fingerprint") == here:
                if serves(table):
                    return TableChoice(
                        MEASURED, own, table, f"measured on this machine ({describe_fingerprint(here)})"
                    )
                own_lacks = True
        others = []
        for path in files:
            if path == own and own_lacks:
                continue
            table = LatencyTable.load(path)
            if not serves(table):
                continue
            if table.provenance.get("fingerprint") == here:  # e.g. the user's profile YAML names it
                return TableChoice(
                    MEASURED, path, table, f"measured on this machine ({describe_fingerprint(here)})"
                )
            others.append((path, table))
        if others:
            path, table = others[0]
            return TableChoice(ELSEWHERE, path, table, f"measured elsewhere ({device_line(table)})")
        if own_lacks:
            return TableChoice(
                "missing",
                note=f"this machine's {profile.name} table holds no {profile.precision} kernels yet",
            )
        return TableChoice("missing", note=f"no {what} table for this machine yet")
    ref = reference_table_path(profile)
    for path in files:
        table = LatencyTable.load(path)
        if not runs_threads_as(table, profile):
            continue  # measured at another thread count or spinning: another target
        if not serves(table):
            continue  # no kernels of this precision
        status: Status = ELSEWHERE if path == ref else MEASURED
        return TableChoice(status, path, table, f"{status} on {device_line(table)}")
    return TableChoice(
        "missing",
        note=f"no {what} table yet: run `edgeprune profile --target {profile.name}{profile.precision_flag}` "
        "on the device",
    )


def runs_threads_as(table: LatencyTable, profile: HardwareProfile) -> bool:
    """Whether ``table`` was measured with ``profile``'s threads and spinning (a table that does not
    record spinning was measured before it was a setting: with spinning off)."""
    prov = table.provenance
    return (
        threading_fields(prov.get("threads", profile.threads), prov.get("spinning", False))
        == profile.threading
    )


def figure_source(profile: HardwareProfile) -> str:
    """Where ``profile``'s latency figures come from here: measured, measured elsewhere or estimate."""
    choice = choose_table(profile)
    if choice.table is not None:
        return choice.status
    return "estimate" if profile.estimate is not None else "none"


def latency_reference(profile: HardwareProfile) -> tuple[Path, float] | None:
    """``(ONNX path, its table time in ms)`` of the reference network kept with this machine's table,
    or None when the table is not this machine's or keeps no reference."""
    choice = choose_table(profile)
    if choice.status != MEASURED or choice.table is None or choice.path is None:
        return None
    ref = choice.table.provenance.get("reference")
    if not isinstance(ref, dict):
        return None
    from edgeprune.latency.kernels import KernelKey

    path = choice.path.with_name(str(ref.get("onnx")))
    try:
        entry = choice.table.get(KernelKey.parse(str(ref.get("entry"))))
    except ValueError:
        return None
    return (path, entry.median_ms) if entry is not None and path.is_file() else None


def describe_tables(profile: HardwareProfile) -> list[dict[str, Any]]:
    """Every table of ``profile`` with its device, entries and whether it is this machine's (for ``targets``)."""
    here = local_fingerprint(profile)
    ref = reference_table_path(profile)
    out: list[dict[str, Any]] = []
    for path in table_files(profile):
        try:
            table = LatencyTable.load(path)
        except ProfileError as err:
            out.append({"path": str(path), "error": str(err)})
            continue
        out.append(
            {
                "path": str(path),
                "kind": "reference" if path == ref else "user",
                "device": device_line(table),
                "this_machine": here is not None and table.provenance.get("fingerprint") == here,
                "entries": len(table.entries),
                "date": table.provenance.get("date"),
                "threads": table.provenance.get("threads"),
                **({"spinning": table.provenance["spinning"]} if "spinning" in table.provenance else {}),
                "precisions": sorted(table.precisions),
            }
        )
    return out
