"""What ``edgeprune targets`` shows: each profile with where its latency figures come from."""

from __future__ import annotations

from typing import Any

from edgeprune.errors import ProfileError
from edgeprune.latency.profile import HardwareProfile, list_profiles
from edgeprune.latency.table import LatencyTable


def provenance_line(profile: HardwareProfile) -> tuple[str, str]:
    """``(source, one-line provenance)``; a measured profile whose table is not there yet says so."""
    if profile.table is not None:
        path = profile.table_path()
        if path.is_file():
            try:
                t = LatencyTable.load(path)
            except ProfileError as err:
                return "invalid", str(err)
            p = t.provenance
            return "measured", (
                f"{len(t.entries)} kernels on {p['device']}, {p['runtime']} {p['runtime_version']}, "
                f"{p['date']}, threads {p.get('threads')}"
            )
        if profile.estimate is None:
            return "missing", f"no table yet: run `edgeprune profile --target {profile.name}`"
    e = profile.estimate
    assert e is not None
    return "estimate", (
        f"roofline from {e.peak_gflops:g} GFLOP/s, {e.bandwidth_gbps:g} GB/s "
        f"({'; '.join(e.citations)[:80]}...), fitted to {e.fitted_to}"
    )


def describe_targets() -> list[dict[str, Any]]:
    """One plain dict per profile (name, runtime, precision, threads, channel multiple, source, provenance)."""
    out = []
    for p in list_profiles():
        source, line = provenance_line(p)
        out.append(
            {
                "name": p.name,
                "description": p.description,
                "runtime": p.runtime,
                "precision": p.precision,
                "threads": p.threads,
                "batch_size": p.batch_size,
                "channel_multiple": p.channel_multiple,
                "source": source,
                "provenance": line,
            }
        )
    return out
