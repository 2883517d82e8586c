"""``edgeprune compile``: search, fine-tune, export and verify a compressed model for a target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from edgeprune.cli.choices import RegistryChoice, comma_separated
from edgeprune.search.registries import EXECUTORS, OBJECTIVES, STRATEGIES


def _overrides(**flags: Any) -> dict[str, Any]:
    """Nested config overrides from the flags the user actually gave."""
    out: dict[str, Any] = {}
    mapping = {
        "model": ("model", "name"), "weights": ("model", "weights"), "num_classes": ("model", "num_classes"),
        "data": ("data", "source"), "extra_train": ("data", "extra_train"), "target": ("target",), "threads": ("threads",), "budget_ms": ("search", "budget_ms"), "speedup": ("search", "speedup"),
        "max_params": ("search", "max_params"), "generations": ("search", "generations"),
        "population": ("search", "population"), "seed": ("search", "seed"), "workers": ("search", "workers"),
        "rank_genes": ("search", "rank_genes"), "strategy": ("search", "strategy"), "objectives": ("search", "objectives"), "executor": ("search", "executor"),
        "address": ("search", "ray_address"), "precision": ("ship", "precision"),
        "finetune_epochs": ("finalize", "epochs"), "distill": ("finalize", "distill"),
        "finetune_precision": ("finalize", "precision"), "picks": ("finalize", "picks"),
        "transfer": ("model", "transfer"), "head_hidden": ("model", "head_hidden"),
        "backbone_weights": ("model", "backbone_weights"), "head_epochs": ("pretrain", "epochs"),
        "allow_untrained": ("pretrain", "allow_untrained"),
    }  # fmt: skip
    for flag, value in flags.items():
        if value is None:
            continue
        path = mapping[flag]
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = str(value) if isinstance(value, Path) else value
    if "seed" in out.get("search", {}):
        out.setdefault("data", {})["seed"] = out["search"]["seed"]
    return out


@click.command("compile")
@click.argument("model", required=False)
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    help="Weights file (state dict; loaded without running pickled code).",
)
@click.option("--num-classes", type=int, help="Class count for torchvision / factory models.")
@click.option("--data", help="'digits', an .npz file, a directory of train/test .npz, or an image folder.")
@click.option(
    "--extra-train",
    multiple=True,
    callback=lambda _ctx, _param, value: tuple(value) or None,  # not given: no override
    help="More training data for the --data pool: an .npz file or a directory of train*.npz (repeatable).",
)
@click.option("--target", help="Hardware profile (see `edgeprune targets`). Default: host-cpu.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Intra-op threads the target runs at (default: its profile's); tables, search and verify use it.",
)
@click.option("--budget-ms", type=float, help="Latency budget on the target (a constraint).")
@click.option(
    "--speedup",
    type=click.FloatRange(min=1.0, min_open=True),
    help="Latency budget as a speedup over the unpruned network on the target's table (e.g. 2: at "
    "most half its time); instead of --budget-ms.",
)
@click.option("--max-params", type=int, help="Parameter cap (a constraint).")
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Run directory. Default: runs/default."
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue a run in --out that was interrupted or failed, wherever it stopped.",
)
@click.option(
    "--allow-untrained",
    is_flag=True,
    default=None,
    help="Without --weights the network is trained from scratch; go on even if it ends at chance "
    "accuracy (pretrain.allow_untrained).",
)
@click.option("--generations", type=int, help="Search generations (search.generations).")
@click.option("--population", type=int, help="Population size per generation (search.population).")
@click.option("--seed", type=int, help="Seed of the search and the data splits: same seed, same front.")
@click.option(
    "--workers", type=int, help="Worker processes for evaluation (the front does not depend on it)."
)
@click.option(
    "--rank-genes",
    is_flag=True,
    default=None,
    help="Also search low-rank factorisations (SVD) of convs; profile the target with --ranks first.",
)
@click.option(
    "--strategy",
    type=RegistryChoice(STRATEGIES),
    help="Search strategy: nsga3 (flat NSGA-III, the default), bilevel (bi-level co-evolution), or any "
    "other registered one.",
)
@click.option(
    "--objectives",
    callback=comma_separated(OBJECTIVES),
    help=f"Comma-separated objectives, e.g. error,params,latency; registered: {', '.join(OBJECTIVES.names())}.",
)
@click.option(
    "--executor",
    type=RegistryChoice(EXECUTORS),
    help="Where evaluations run: local (default) or ray (pip install 'edgeprune[ray]'), or any other "
    "registered one.",
)
@click.option("--address", help="Ray cluster address for --executor ray.")
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "fp16", "int8"]),
    help="Shipped precision (auto: the target's).",
)
@click.option("--finetune-epochs", type=int, help="Fine-tuning epochs per pick.")
@click.option(
    "--distill/--no-distill",
    default=None,
    help="Distil the picks from the unpruned network fine-tuned with the same recipe.",
)
@click.option(
    "--finetune-precision",
    type=click.Choice(["fp32", "bf16", "auto"]),
    help="Forward passes of fine-tuning in bfloat16 (CPU autocast; auto: where a training step measured on this "
    "CPU is at least 10 % faster in it).",
)
@click.option(
    "--picks",
    callback=lambda _ctx, _param, value: tuple(n.strip() for n in value.split(",")) if value else None,
    help="Which picks to fine-tune, export and verify, comma-separated (default: accurate,knee,fast; each "
    "costs one fine-tuning).",
)
@click.option(
    "--transfer",
    is_flag=True,
    default=None,
    help="Transfer learning: MODEL is a backbone, --weights its pretrained weights (another task); its "
    "classifier becomes a sparse FC head whose neurons are genes. The backbone stays frozen.",
)
@click.option("--head-hidden", type=int, help="Hidden neurons of the --transfer head (default 64).")
@click.option("--head-epochs", type=int, help="Epochs training the new --transfer head before the search.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="YAML with the same fields; flags override it.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the resolved config, the search space and a time estimate, then stop.",
)
@click.option("--quiet", is_flag=True, help="No progress output (the log file still has it).")
@click.option("--json", "as_json", is_flag=True, help="Progress and result as JSON lines on stdout.")
def command(
    model: str | None,
    config_file: Path | None,
    out: Path | None,
    resume: bool,
    dry_run: bool,
    quiet: bool,
    as_json: bool,
    objectives: tuple[str, ...] | None,
    **flags: Any,
) -> None:
    """Compress MODEL for a target: search the front, fine-tune and ship three picks.

    With no MODEL and no --data it runs the default job: a small ResNet trained on scikit-learn's
    8x8 digits (no download).
    """
    from edgeprune.pipeline import compile_run, dry_run_summary, resolve_config
    from edgeprune.progress import JsonReporter, Reporter, RichReporter

    if not flags.get("transfer"):
        flags["transfer"] = None
        for opt in ("head_hidden", "head_epochs"):
            if flags.get(opt) is not None:
                from edgeprune.errors import ConfigError

                raise ConfigError(f"--{opt.replace('_', '-')} needs --transfer")
    else:  # --weights are the backbone's (a network trained on another task), not a full network's
        flags["backbone_weights"] = flags.pop("weights")
        flags["weights"] = None
    cfg = resolve_config(config_file, _overrides(model=model, objectives=objectives, **flags))
    reporter: Reporter = JsonReporter() if as_json else (Reporter() if quiet else RichReporter())
    if dry_run:
        summary = dry_run_summary(cfg)
        if as_json:
            click.echo(json.dumps(summary, sort_keys=True))
        else:
            click.echo(cfg.to_yaml())
            for k, v in summary.items():
                if k != "config":
                    click.echo(f"{k}: {v}")
        return
    result = compile_run(cfg, out or Path("runs/default"), resume=resume, reporter=reporter)
    if not as_json and not quiet:
        click.echo(result["summary_text"])
