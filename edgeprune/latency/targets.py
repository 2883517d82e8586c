"""What ``edgeprune targets`` shows: each profile, where its latency figures come from on this machine,
which tables exist for it (and for which device), and how far its estimate is from the device it names."""

from __future__ import annotations

from typing import Any

from edgeprune.errors import ProfileError
from edgeprune.latency.profile import HardwareProfile, list_profiles
from edgeprune.latency.store import choose_table, describe_tables


def _estimate_line(profile: HardwareProfile) -> tuple[str, dict[str, Any]]:
    e = profile.estimate
    assert e is not None
    check = dict(e.published_check)
    line = f"roofline from {e.peak_gflops:g} GFLOP/s, {e.bandwidth_gbps:g} GB/s"
    if check:
        line += (
            f"; vs {int(check.get('n', 0))} published measurements: median error "
            f"{check.get('median_abs_pct_err', float('nan')):.0f} %, worst {check.get('max_abs_pct_err', float('nan')):.0f} %"
        )
    if e.ranking_only:
        line += (
            f"; RANKING ONLY (not within 2x of the device; tau {check.get('kendall_tau', float('nan')):.2f})"
        )
    return line, {"published_check": check, "ranking_only": e.ranking_only}


def provenance(profile: HardwareProfile) -> dict[str, Any]:
    """``source`` of the figures here (measured / measured elsewhere / estimate / missing / invalid),
    a one-line ``provenance``, the target's ``tables`` and its ``estimate`` check."""
    out: dict[str, Any] = {"tables": describe_tables(profile)}
    try:
        choice = choose_table(profile)
    except ProfileError as err:
        return {**out, "source": "invalid", "provenance": str(err)}
    if profile.estimate is not None:
        est_line, out["estimate"] = _estimate_line(profile)
    if choice.table is not None:
        t = choice.table
        line = f"{choice.note}: {len(t.entries)} entries, {t.provenance.get('date')}"
        if choice.status != "measured" and profile.local:
            line += f"; `edgeprune compile` measures what it needs on this machine (or `edgeprune profile --target {profile.name}`)"
        return {**out, "source": choice.status, "provenance": line}
    if profile.estimate is None:
        return {**out, "source": "missing", "provenance": choice.note}
    return {**out, "source": "estimate", "provenance": est_line}


def describe_targets() -> list[dict[str, Any]]:
    """One plain dict per profile (name, runtime, precision, threads, channel multiple, source, provenance,
    tables, estimate check)."""
    out = []
    for p in list_profiles():
        out.append(
            {
                "name": p.name,
                "description": p.description,
                "runtime": p.runtime,
                "precision": p.precision,
                "threads": p.threads,
                "spinning": p.spinning,
                "batch_size": p.batch_size,
                "channel_multiple": p.channel_multiple,
                "local": p.local,
                **provenance(p),
            }
        )
    return out
