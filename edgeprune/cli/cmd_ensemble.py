"""``edgeprune ensemble``: combine diverse front members of a finished run into one verified model."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgeprune.errors import VerificationError


@click.command("ensemble")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--size", "size", type=int, default=3, show_default=True, help="Number of front members.")
@click.option(
    "--tolerance", type=float, default=0.05, show_default=True,
    help="Members come from the front members within this search error of the best.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(run_dir: Path, size: int, tolerance: float, as_json: bool) -> None:
    """Average the probabilities of SIZE diverse front members of RUN_DIR; export and verify the ensemble."""
    from edgeprune.pipeline.ensemble import ensemble_run
    from edgeprune.progress import Reporter, RichReporter

    result = ensemble_run(run_dir, size, Reporter() if as_json else RichReporter(), tolerance=tolerance)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
        if not result["verified"]:
            raise VerificationError(
                f"the ensemble failed verification (details: {run_dir / 'ensemble' / 'verify.json'})"
            )
        return
    for m in result["members"]:
        click.echo(
            f"member {m['front_rank']:3d}: test {m['test_accuracy']:.2%}  robust {m['robust_accuracy']:.2%}  params {m['params']:,}"
        )
    click.echo(
        f"ensemble  : test {result['ensemble_test_accuracy']:.2%}  robust {result['ensemble_robust_accuracy']:.2%}  "
        f"latency {result['predicted_latency_ms']:.4f} ms ({result['latency_source']}, predicted), "
        f"{'verified' if result['verified'] else 'VERIFY FAILED'}"
    )
    click.echo(f"written to {run_dir / 'ensemble'}")
    if not result["verified"]:
        raise VerificationError(
            f"the ensemble failed verification (details: {run_dir / 'ensemble' / 'verify.json'})"
        )
