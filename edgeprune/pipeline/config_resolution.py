"""Resolve a compile's config (defaults <- YAML file <- CLI flags) and summarise a dry run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edgeprune.errors import ConfigError
from edgeprune.pipeline.inputs import search_preflight, validate_inputs
from edgeprune.pipeline_config import CompileConfig


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve_config(config_file: Path | None, overrides: dict[str, Any]) -> CompileConfig:
    """Defaults <- YAML file <- CLI flags, validated into one :class:`CompileConfig`."""
    data: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file not found: {config_file}")
        try:
            loaded = yaml.safe_load(config_file.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(
                f"config file {config_file} is not valid YAML: {str(err).splitlines()[0]}"
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {config_file} must hold a mapping")
        data = loaded
    data = _merge(data, overrides)
    cfg = CompileConfig.from_mapping(data, where=str(config_file) if config_file else "compile options")
    default_model = cfg.model.name == CompileConfig().model.name
    if not default_model and cfg.data.source == "digits" and "data" not in data:
        raise ConfigError(
            f"--data is required for model {cfg.model.name} (only the default job runs on the built-in digits)"
        )
    return cfg


def dry_run_summary(cfg: CompileConfig) -> dict[str, Any]:
    """Resolved config, search space size and a time estimate from one timed evaluation."""
    import time

    inputs = validate_inputs(cfg)
    evaluator, space, _ = search_preflight(inputs)  # an impossible budget is refused here too
    t0 = time.perf_counter()
    evaluator.evaluate(space.decode(space.uniform(0.3)))
    per_eval_s = time.perf_counter() - t0
    n_evals = cfg.search.population * cfg.search.generations
    est_s = per_eval_s * n_evals / max(1, cfg.search.workers)
    return {
        "config": cfg.to_dict(),
        "target": f"{inputs.profile.name} ({inputs.profile.runtime}, {inputs.profile.precision}, latency {evaluator.latency_source})",
        "genes": space.n_var,
        "genomes": f"{space.size:.4g}",
        "evaluations (at most)": n_evals,
        "seconds per evaluation": round(per_eval_s, 3),
        "search time estimate": f"{est_s / 60:.1f} min",
    }
