"""``edgeprune profile``: measure a target's per-kernel latency table (locally or through an agent)."""

from __future__ import annotations

import os
from pathlib import Path

import click


def _shape(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    from edgeprune.errors import ConfigError

    try:
        c, h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--input-shape must be C,H,W (e.g. 3,32,32), got {text!r}") from None
    return (c, h, w)


@click.command("profile")
@click.option("--target", required=True, help="Hardware profile name or YAML path (see `edgeprune targets`).")
@click.option(
    "--model",
    "model_name",
    default="resnet56",
    show_default=True,
    help="Network whose search space is profiled.",
)
@click.option("--num-classes", type=int, help="Class count for torchvision / factory models.")
@click.option("--input-shape", help="C,H,W the model runs at (default: its natural input shape).")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Intra-op threads to measure at (default: the target's); a table holds one thread count.",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16", "int8"]),
    help="Precision to measure at (default: the target's). int8 on ONNX Runtime times every kernel "
    "quantized with the target's recipe (calibration/TARGET.yaml); its entries sit beside the FP32 ones.",
)
@click.option(
    "--table",
    "table_path",
    type=click.Path(path_type=Path),
    help="Table file to write/resume (default: this device's table in $EDGEPRUNE_HOME/tables/TARGET/).",
)
@click.option(
    "--passes",
    default=3,
    show_default=True,
    help="Passes over all kernels, spread in time (entry = min of pass medians).",
)
@click.option("--runs", default=100, show_default=True, help="Timed runs per kernel per pass.")
@click.option("--warmup", default=30, show_default=True, help="Warm-up runs per fresh session.")
@click.option("--remote", help="URL of an `edgeprune agent` on the device, e.g. http://10.0.0.7:8765.")
@click.option("--token", help="Agent token (default: $EDGEPRUNE_AGENT_TOKEN).")
@click.option(
    "--ranks",
    is_flag=True,
    help="Also measure the factorised kernels that rank genes (--rank-genes) produce.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(
    target: str,
    model_name: str,
    num_classes: int | None,
    input_shape: str | None,
    threads: int | None,
    precision: str | None,
    table_path: Path | None,
    passes: int,
    runs: int,
    warmup: int,
    remote: str | None,
    token: str | None,
    ranks: bool,
    quiet: bool,
) -> None:
    """Measure every kernel the search space of MODEL can produce on TARGET; resumable."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from edgeprune.latency.profile import target_profile
    from edgeprune.latency.profile_run import run_profile

    # a bad target or precision is one line before any progress bar
    target_profile(target, threads, precision)
    console = Console(stderr=True, quiet=quiet)
    token = token or os.environ.get("EDGEPRUNE_AGENT_TOKEN")
    with Progress(
        TextColumn("[bold]profiling[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
    ) as bar:
        task = bar.add_task(target, total=None)

        def plan(n_keys: int, path: Path) -> None:
            console.print(f"{n_keys} kernel configurations of {model_name} -> {path}")

        def progress(done: int, total: int, key: object) -> None:
            bar.update(task, completed=done, total=total, description=f"{target} {key or ''}")

        s = run_profile(
            target,
            model_name,
            input_shape=_shape(input_shape),
            num_classes=num_classes,
            threads=threads,
            precision=precision,
            table_path=table_path,
            passes=passes,
            warmup=warmup,
            runs=runs,
            remote=remote,
            token=token,
            ranks=ranks,
            on_progress=progress,
            on_plan=plan,
        )
    click.echo(
        f"{s.target}: {s.kernels} kernels for {s.model}, {s.measured_now} measurements now "
        f"({s.entries} entries, {s.source}) -> {s.table_path}"
    )
    for line in s.warnings():
        click.echo(line, err=True)
