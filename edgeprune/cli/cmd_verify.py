"""``edgeprune verify``: check a shipped pick on its target runtime and write verify.json."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command("verify")
@click.argument("pick_dir", type=click.Path(path_type=Path))
@click.option("--target", required=True, help="Hardware profile name or YAML path (see `edgeprune targets`).")
@click.option(
    "--data", required=True, help="Data source whose test split is used (directory, .npz or `digits`)."
)
@click.option("--images", default=1000, show_default=True, help="Test images for parity and accuracy.")
@click.option("--repetitions", default=100, show_default=True, help="Timed runs per latency pass.")
@click.option(
    "--passes", default=3, show_default=True, help="Latency passes (reported: min of pass medians)."
)
@click.option(
    "--latency-band",
    default="0.5,1.5",
    show_default=True,
    help="LO,HI: measured / predicted latency must lie in this band (checked for measured tables).",
)
@click.option("--remote", help="URL of an `edgeprune agent` that times the model on the device.")
@click.option("--token", help="Agent token (default: $EDGEPRUNE_AGENT_TOKEN).")
def command(pick_dir: Path, target: str, data: str, images: int, repetitions: int, passes: int,
            latency_band: str, remote: str | None, token: str | None) -> None:  # fmt: skip
    """Verify PICK_DIR (parity, accuracy, latency on TARGET); exit non-zero if a check fails."""
    from edgeprune.errors import ConfigError
    from edgeprune.verify.checks import VerifyThresholds
    from edgeprune.verify.command import run_verify

    try:
        lo, hi = (float(v) for v in latency_band.split(","))
        thresholds = VerifyThresholds(latency_ratio_min=lo, latency_ratio_max=hi)
    except ValueError:  # not two numbers, or out of order / not positive (pydantic's ValidationError)
        raise ConfigError(f"--latency-band wants LO,HI with 0 < LO <= HI, got {latency_band!r}") from None
    report = run_verify(
        pick_dir, target=target, data=data, remote=remote, token=token or os.environ.get("EDGEPRUNE_AGENT_TOKEN"),
        images=images, repetitions=repetitions, passes=passes, thresholds=thresholds,
    )  # fmt: skip
    lat = report.sections.get("latency", {})
    acc = report.sections.get("accuracy", {})
    click.echo(report.summary_line())
    if acc:
        click.echo(
            f"  test accuracy on {report.target}: {acc.get('shipped', float('nan')):.2%} ({acc.get('images')} images)"
        )
    if lat:
        ratio = lat.get("ratio_measured_to_predicted")
        click.echo(
            f"  latency {lat['median_ms']:.3f} ms (p10 {lat['p10_ms']:.3f}, p90 {lat['p90_ms']:.3f})"
            + (f", {ratio:.2f}x the {lat['prediction_source']} prediction" if ratio else "")
        )
    click.echo(f"  -> {pick_dir / 'verify.json'}")
