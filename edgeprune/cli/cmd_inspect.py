"""``edgeprune inspect``: the prunable channel groups, droppable blocks, params and MACs of a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from edgeprune.errors import ConfigError


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """``"3x32x32"`` -> (3, 32, 32); anything else is a :class:`ConfigError`."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != 3 or any(d < 1 for d in dims):
        raise ConfigError(f"--input-shape must look like 3x32x32 (C x H x W, positive), got {text!r}")
    return dims  # type: ignore[return-value]


def _summary(analysis: Any, name: str) -> dict[str, Any]:
    return {
        "model": name,
        "input_shape": list(analysis.input_shape),
        "params": analysis.params,
        "macs": analysis.macs,
        "channel_multiple": analysis.channel_multiple,
        "groups": [
            {"name": g.name, "kind": g.kind, "channels": g.channels, "layers": len(g.layers)}
            for g in analysis.groups
        ],
        "fixed": [{"name": f.name, "channels": f.channels, "reason": f.reason} for f in analysis.fixed],
        "blocks": [{"name": b.name, "stage": b.stage} for b in analysis.blocks],
    }


def _print_tables(analysis: Any, name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    c, h, w = analysis.input_shape
    console.print(
        f"[bold]{name}[/bold]  input {c}x{h}x{w}  params {analysis.params:,}  MACs {analysis.macs:,}"
        f"  channel multiple {analysis.channel_multiple}"
    )
    groups = Table(title="prunable channel groups")
    for col, justify in (("group", "left"), ("kind", "left"), ("channels", "right"), ("layers", "right")):
        groups.add_column(col, justify=justify)  # type: ignore[arg-type]
    for g in analysis.groups:
        groups.add_row(g.name, g.kind, str(g.channels), str(len(g.layers)))
    console.print(groups)
    if analysis.fixed:
        fixed = Table(title="groups that are not pruned")
        fixed.add_column("group")
        fixed.add_column("channels", justify="right")
        fixed.add_column("why")
        for f in analysis.fixed:
            fixed.add_row(f.name, str(f.channels), f.reason)
        console.print(fixed)
    blocks = Table(title="droppable residual blocks")
    blocks.add_column("stage")
    blocks.add_column("blocks")
    for stage in analysis.stages:
        blocks.add_row(stage, ", ".join(b.name for b in analysis.blocks if b.stage == stage))
    console.print(blocks if analysis.blocks else "droppable residual blocks: none")


@click.command("inspect")
@click.argument("model")
@click.option(
    "--weights", type=click.Path(path_type=Path), help="Weights file (loaded without running pickled code)."
)
@click.option(
    "--input-shape", help="C x H x W, e.g. 3x32x32. Default: the family's (3x224x224 for torchvision)."
)
@click.option(
    "--num-classes", type=int, help="Class count (torchvision / factory models; checked against the weights)."
)
@click.option("--channel-multiple", type=int, default=1, show_default=True, help="Target channel multiple.")
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON instead of tables.")
@click.option(
    "--space", "show_space", is_flag=True, help="Also print the search space: its genes, levels and size."
)
@click.option("--rank-genes", is_flag=True, help="With --space: include the low-rank (rank) genes.")
@click.option(
    "--target", help="Take the channel multiple from this hardware profile (overrides --channel-multiple)."
)
def command(
    model: str,
    weights: Path | None,
    input_shape: str | None,
    num_classes: int | None,
    channel_multiple: int,
    as_json: bool,
    show_space: bool,
    rank_genes: bool,
    target: str | None,
) -> None:
    """Show MODEL's prunable channel groups, droppable blocks, parameters and MACs."""
    import torch

    from edgeprune.config import ModelConfig
    from edgeprune.graph import analyze
    from edgeprune.models import build_model

    if target is not None:
        from edgeprune.latency import load_profile

        channel_multiple = load_profile(target).channel_multiple
    if channel_multiple < 1:
        raise ConfigError(f"--channel-multiple must be >= 1, got {channel_multiple}")
    shape = parse_input_shape(input_shape) if input_shape else None
    cfg = ModelConfig.from_mapping(
        {"name": model, "weights": weights, "num_classes": num_classes, "input_shape": shape}, where="inspect"
    )
    loaded = build_model(cfg)
    shape = loaded.input_shape or ((3, 224, 224) if model.startswith("torchvision:") else None)
    if shape is None:
        raise ConfigError(f"{model}: give --input-shape (C x H x W), the model does not declare one")
    analysis = analyze(loaded.model, torch.zeros(1, *shape), channel_multiple)
    space = None
    if show_space:
        from edgeprune.space import SearchSpace

        space = SearchSpace.from_analysis(analysis, channel_multiple, rank_genes=rank_genes)
    if as_json:
        summary = _summary(analysis, model)
        if space is not None:
            summary["space"] = {
                "size": space.size,
                "genes": [{"name": g, "kind": k, "levels": lv} for g, k, lv in space.describe()],
            }
        click.echo(json.dumps(summary, indent=2))
        return
    _print_tables(analysis, model)
    if space is not None:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"search space at channel multiple {channel_multiple}: {space.size:.4g} genomes")
        for col in ("gene", "kind", "levels (channels or blocks kept)"):
            table.add_column(col)
        for row in space.describe():
            table.add_row(*row)
        Console().print(table)
