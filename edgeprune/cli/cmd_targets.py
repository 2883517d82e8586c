"""``edgeprune targets``: the hardware profiles, where their latency comes from, their tables."""

from __future__ import annotations

import json
import sys

import click


@click.command("targets")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per profile (the scripting interface)."
)
def command(as_json: bool) -> None:
    """List the hardware profiles, where their latency figures come from on this machine, and their tables."""
    from edgeprune.latency.store import edgeprune_home
    from edgeprune.latency.targets import describe_targets

    rows = describe_targets()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    # a pipe gets whole identifiers (`edgeprune targets | grep jetson-orin`): no width limit, no wrapping
    console = Console() if sys.stdout.isatty() else Console(width=10_000, no_color=True, soft_wrap=True)
    t = Table(title="edgeprune targets")
    for col in ("target", "runtime", "precision", "threads", "channel multiple", "latency", "provenance"):
        t.add_column(col, no_wrap=col != "provenance", overflow="fold")
    for r in rows:
        t.add_row(
            r["name"], r["runtime"], r["precision"],
            str(r["threads"]) + ("" if r["threads"] == 1 else f" (spinning {'on' if r['spinning'] else 'off'})"),
            str(r["channel_multiple"]),
            r["source"], r["provenance"],
        )  # fmt: skip
    console.print(t)
    tables = [(r["name"], tab) for r in rows for tab in r["tables"]]
    if tables:
        tt = Table(title=f"latency tables (user tables under {edgeprune_home() / 'tables'})")
        for col in ("target", "device", "this machine", "entries", "date", "kind", "path"):
            tt.add_column(col, no_wrap=col not in ("device", "path"), overflow="fold")
        for name, tab in tables:
            if "error" in tab:
                tt.add_row(name, tab["error"], "", "", "", "", tab["path"])
                continue
            tt.add_row(
                name, tab["device"], "yes" if tab["this_machine"] else "no", str(tab["entries"]),
                str(tab["date"]), tab["kind"], tab["path"],
            )  # fmt: skip
        console.print(tt)
