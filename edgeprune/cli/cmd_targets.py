"""``edgeprune targets``: the hardware profiles, their runtime, precision, channel multiple, provenance."""

from __future__ import annotations

import json

import click


@click.command("targets")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per profile.")
def command(as_json: bool) -> None:
    """List the hardware profiles and whether their latency is measured or estimated."""
    from edgeprune.latency.targets import describe_targets

    rows = describe_targets()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="edgeprune targets")
    for col in ("target", "runtime", "precision", "threads", "channel multiple", "latency", "provenance"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["name"],
            r["runtime"],
            r["precision"],
            str(r["threads"]),
            str(r["channel_multiple"]),
            r["source"],
            r["provenance"],
        )
    Console().print(t)
