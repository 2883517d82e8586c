"""Load and validate what a run needs (model, data, target, latency table, search limits).

Nothing is written here: a refused run leaves no directory behind (:mod:`edgeprune.pipeline.prepare`
creates it once every input is valid).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from edgeprune.data import DataBundle, load_data
from edgeprune.errors import ConfigError, DataError, SearchError, UnsupportedModelError
from edgeprune.latency import HardwareProfile
from edgeprune.latency.profile import target_profile
from edgeprune.models import LoadedModel, build_model, read_state_dict
from edgeprune.models.transfer import transfer_spec
from edgeprune.pipeline_config import CompileConfig
from edgeprune.rundir import RunDir
from edgeprune.search.evaluator import Evaluator, EvaluatorSpec, torch_threads
from edgeprune.search.run import build_space
from edgeprune.space import SearchSpace

log = logging.getLogger("edgeprune")


@dataclass
class Inputs:
    """Validated inputs of a run."""

    cfg: CompileConfig
    profile: HardwareProfile
    loaded: LoadedModel
    data: DataBundle


def validate_inputs(cfg: CompileConfig) -> Inputs:
    """Load target, weights, data and model and check they fit together; raises before anything is
    written. The cheap checks come first, so a bad target or weights file fails before data loads."""
    check_transfer(cfg)
    profile = target_profile(cfg.target, cfg.threads, cfg.ship.precision)  # searched as shipped
    for weights in (cfg.model.weights, cfg.model.backbone_weights):
        if weights is not None:
            read_state_dict(weights)  # a corrupt or foreign file fails here, before the data loads
    data = load_data(cfg.data)
    for split_name, split in (("training", data.train), ("validation", data.val), ("test", data.test)):
        if not bool(torch.isfinite(split.x).all()):
            raise DataError(
                f"{cfg.data.source}: the {split_name} images normalise to NaN or infinity (a channel of "
                "constant pixels, std 0?); set data.mean and data.std in --config"
            )
    num_classes = cfg.model.num_classes or data.num_classes
    model_cfg = cfg.model.model_copy(update={"num_classes": num_classes})
    # transfer mode: the run's model name becomes transfer:BACKBONE:H, so any build_model(name) rebuilds it
    if model_cfg.transfer:
        model_cfg = model_cfg.model_copy(update={"name": transfer_spec(model_cfg)})
    # a network trained from scratch (the default job) starts from seeded weights: same seed, same run
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.search.seed)
        loaded = build_model(model_cfg)
    if loaded.num_classes and loaded.num_classes != data.num_classes:
        raise DataError(
            f"the model predicts {loaded.num_classes} classes but the data has {data.num_classes}"
        )
    try:
        with torch.no_grad():
            out = loaded.model(data.val.x[:2])
    except Exception as err:  # the user's network fails on the data: one line, not its traceback
        first = next((x for x in str(err).splitlines() if x.strip()), type(err).__name__)
        raise UnsupportedModelError(
            f"{cfg.model.name} cannot run on the data's input shape {data.input_shape}: {first}"
        ) from None
    if not isinstance(out, torch.Tensor):
        raise UnsupportedModelError(
            f"{cfg.model.name} returns a {type(out).__name__}, not a tensor of class scores"
        )
    if out.ndim != 2 or out.shape[1] != data.num_classes:
        raise DataError(f"the model outputs shape {tuple(out.shape)}, expected (N, {data.num_classes})")
    return Inputs(cfg.model_copy(update={"model": model_cfg}), profile, loaded, data)


def search_preflight(inputs: Inputs) -> tuple[Evaluator, SearchSpace, dict[str, Any]]:
    """Build the search's evaluator and space on the user's network and refuse what the search would
    only refuse later: a latency budget or parameter cap no network of the space meets, an INT8
    precision without the target's calibration recipe. Returns them with the *latency probe* (the
    target table's prediction for the unpruned and the fastest network), which a resume compares to
    tell a changed table. Weights do not matter here: latency and size depend on the shapes only."""
    from edgeprune.graph import apply_plan

    cfg = inputs.cfg
    with torch.random.fork_rng(devices=[]):  # leaves the global RNG as it was (a from-scratch init)
        evaluator = Evaluator(
            EvaluatorSpec(cfg.model, cfg.data, cfg.target, cfg.search, cfg.threads, cfg.ship.precision)
        )
        space = build_space(evaluator)
        fastest = space.decode(space.repair(space.upper_bounds * 0))
        with torch_threads(1):
            smallest = apply_plan(evaluator.model, fastest, evaluator.example)
            fastest_ms = float(evaluator.predictor.predict_ms(smallest, evaluator.input_shape))
            unpruned_ms = float(evaluator.predictor.predict_ms(evaluator.model, evaluator.input_shape))
    target = f"{evaluator.profile.name} ({evaluator.latency_source})"
    speedup = cfg.search.speedup
    budget = cfg.search.budget_for(unpruned_ms)
    flag = "--budget-ms" if speedup is None else "--speedup"
    est = inputs.profile.estimate
    if (
        cfg.search.budget_ms is not None
        and evaluator.latency_source == "estimate"
        and est is not None
        and est.ranking_only
    ):  # a speedup is a ratio, which is what a ranking-only estimate is good for
        raise SearchError(
            f"--budget-ms is refused on {inputs.profile.name}: its estimate is for ranking only (not within 2x "
            f"of published measurements of the device); profile the device (`edgeprune profile --target "
            f"{inputs.profile.name}`), give --speedup instead, or drop --budget-ms and pick from the front"
        )
    if budget is not None and fastest_ms > budget:
        asked = f"{budget:g}" if speedup is None else f"{speedup:g} ({budget:.3f} ms)"
        raise SearchError(
            f"{flag} {asked} is impossible: the fastest network in the search space takes "
            f"{fastest_ms:.3f} ms on {target}"
            + ("" if speedup is None else f", {unpruned_ms / fastest_ms:.2f}x faster than the unpruned one")
        )
    cap = cfg.search.max_params
    min_params = sum(p.numel() for p in smallest.parameters())
    if cap is not None and min_params > cap:
        raise SearchError(
            f"--max-params {cap:,} is impossible: the smallest network in the search space has "
            f"{min_params:,} parameters"
        )
    precision = inputs.profile.precision if cfg.ship.precision == "auto" else cfg.ship.precision
    if precision == "int8":
        from edgeprune.export.int8 import load_recipe

        load_recipe(inputs.profile.name)
    probe = {"source": evaluator.latency_source, "unpruned_ms": unpruned_ms, "fastest_ms": fastest_ms}
    return evaluator, space, probe


def resolve_budget(inputs: Inputs, probe: dict[str, Any]) -> Inputs:
    """A ``search.speedup`` becomes the search's ``budget_ms``: the table's time of the unpruned
    network (the latency probe's) over the speedup. The user's config (``config.yaml``) keeps the
    speedup; the search, its workers and the report see the budget it resolved to."""
    s = inputs.cfg.search
    if s.speedup is None:
        return inputs
    budget = s.budget_for(float(probe["unpruned_ms"]))
    search = s.model_copy(update={"budget_ms": budget, "speedup": None})
    return Inputs(
        inputs.cfg.model_copy(update={"search": search}), inputs.profile, inputs.loaded, inputs.data
    )


def check_transfer(cfg: CompileConfig) -> None:
    """Transfer mode needs pretrained weights (the backbone's, or a full transfer network's)."""
    m = cfg.model
    if not m.transfer:
        return
    if m.weights is None and m.backbone_weights is None:
        raise ConfigError("--transfer needs a pretrained backbone: pass --weights")
    if cfg.finalize.distill:
        raise ConfigError(
            "--distill is not supported with --transfer (the head trains on cached backbone features)"
        )


def evaluator_spec(inputs: Inputs, run: RunDir) -> EvaluatorSpec:
    """The search's evaluator reads the run's own copy of the base weights."""
    model_cfg = inputs.cfg.model.model_copy(update={"weights": run.base_weights})
    c = inputs.cfg
    return EvaluatorSpec(model_cfg, c.data, c.target, c.search, c.threads, c.ship.precision)


# --- config resolution -----------------------------------------------------------------------------
