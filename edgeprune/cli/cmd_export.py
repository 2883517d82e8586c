"""``edgeprune export``: ship a network (optionally pruned by a plan) as a verified-ready pick directory."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("model_name")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Pick directory to create.")
@click.option(
    "--data", required=True, help="Data source (its normalisation, classes and INT8 calibration images)."
)
@click.option("--target", required=True, help="Hardware profile name or YAML path.")
@click.option("--weights", type=click.Path(path_type=Path), help="Weights of MODEL_NAME (state_dict).")
@click.option("--plan", type=click.Path(path_type=Path), help="plan.json pruning plan to apply.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), help="Default: the target's.")
@click.option("--aoti", is_flag=True, help="Also compile model.pt2 for the C++ LibTorch backend (10-60 s).")
@click.option("--dynamic-batch", is_flag=True, help="Dynamic batch dimension instead of batch 1.")
def command(model_name: str, out: Path, data: str, target: str, weights: Path | None, plan: Path | None,
            precision: str | None, aoti: bool, dynamic_batch: bool) -> None:  # fmt: skip
    """Export MODEL_NAME to ONNX (+ INT8, + model.pt2) with manifest.json into --out."""
    from edgeprune.export.command import export_pick

    shipped, predicted, source = export_pick(
        out, model_name=model_name, data=data, target=target, weights=weights, plan=plan, precision=precision,
        aoti=aoti, dynamic_batch=dynamic_batch,
    )  # fmt: skip
    files = sorted(p.name for p in shipped.pick_dir.iterdir())
    click.echo(f"{shipped.pick_dir}: {', '.join(files)}")
    if predicted is not None:
        click.echo(f"  predicted latency on {target}: {predicted:.3f} ms ({source})")
    click.echo(f"  next: edgeprune verify {shipped.pick_dir} --target {target} --data {data}")
