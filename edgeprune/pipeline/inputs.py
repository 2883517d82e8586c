"""Load and validate what a run needs (model, data, target, latency table) and prepare its directory.

Nothing is written until every input has been validated, so bad input never leaves a half-written run
directory behind.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from edgeprune.atomic import write_bytes_atomic, write_text_atomic
from edgeprune.data import DataBundle, load_data
from edgeprune.errors import ConfigError, DataError, RunDirError, UnsupportedModelError
from edgeprune.latency import HardwareProfile, load_profile
from edgeprune.models import LoadedModel, build_model
from edgeprune.models.transfer import parse_transfer_spec, transfer_spec
from edgeprune.pipeline_config import CompileConfig
from edgeprune.progress import Reporter, attach_log_file
from edgeprune.rundir import RunDir
from edgeprune.search.evaluator import Evaluator, EvaluatorSpec
from edgeprune.search.run import build_space
from edgeprune.train import evaluate_accuracy, fine_tune

log = logging.getLogger("edgeprune")


@dataclass
class Inputs:
    """Validated inputs of a run."""

    cfg: CompileConfig
    profile: HardwareProfile
    loaded: LoadedModel
    data: DataBundle


def _state_bytes(model: torch.nn.Module) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def validate_inputs(cfg: CompileConfig) -> Inputs:
    """Load target, data and model and check they fit together; raises before anything is written."""
    check_transfer(cfg)
    profile = load_profile(cfg.target)
    data = load_data(cfg.data)
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
    except RuntimeError as err:
        raise UnsupportedModelError(
            f"{cfg.model.name} cannot run on the data's input shape {data.input_shape}: {str(err).splitlines()[0]}"
        ) from None
    if out.ndim != 2 or out.shape[1] != data.num_classes:
        raise DataError(f"the model outputs shape {tuple(out.shape)}, expected (N, {data.num_classes})")
    return Inputs(cfg.model_copy(update={"model": model_cfg}), profile, loaded, data)


SMALL_MODEL_MACS = 10_000_000


def training_threads(model: torch.nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Intra-op threads for training: one for small networks (more threads only add synchronisation,
    and spin-waiting threads slow down badly on a shared machine), torch's default otherwise."""
    from edgeprune.graph import count_macs

    return (
        1 if count_macs(model, torch.zeros(1, *input_shape)) < SMALL_MODEL_MACS else torch.get_num_threads()
    )


# --- transfer mode (edgeprune.models.transfer) ------------------------------------------------------
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


def train_head(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> None:
    """Train only the transfer head: the backbone is frozen (parameters and BN statistics), its features
    are computed once and the head is fitted on them (no augmentation)."""
    from edgeprune.models.transfer import backbone_features, freeze_backbone

    net = freeze_backbone(model)
    feats = backbone_features(net, x)
    fine_tune(net.head, feats, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    net.eval()


def _train_new_head(inputs: Inputs, reporter: Reporter) -> None:
    """The transfer pretrain stage: the new head is trained on the frozen backbone's features (weights
    and BN statistics as pretrained)."""
    cfg = inputs.cfg.pretrain
    reporter.stage(
        "pretrain",
        f"training the new head ({inputs.cfg.model.head_hidden} hidden neurons) for {cfg.epochs} epochs, "
        f"backbone {parse_transfer_spec(inputs.cfg.model.name)[0]} frozen",
    )
    d = inputs.data
    # no BN recalibration here: re-estimating the statistics on the new task's 6 of CIFAR-10's 10 classes
    # cost 5.5 points of test accuracy on the animal task (81.0% -> 75.5%; benchmarks/transfer_mode.py)
    train_head(inputs.loaded.model, d.train.x, d.train.y, epochs=cfg.epochs, lr=cfg.lr,
               batch_size=cfg.batch_size, seed=inputs.cfg.search.seed)  # fmt: skip
    acc = evaluate_accuracy(inputs.loaded.model, d.val.x, d.val.y)
    reporter.info(f"validation accuracy of the new head: {acc:.2%}")


# ----------------------------------------------------------------------------------------------------
def _pretrain(inputs: Inputs, reporter: Reporter) -> None:
    cfg = inputs.cfg.pretrain
    if inputs.cfg.model.transfer:
        _train_new_head(inputs, reporter)
        return
    reporter.stage(
        "pretrain",
        f"training {inputs.cfg.model.name} from scratch for {cfg.epochs} epochs (no weights given)",
    )
    d = inputs.data
    fine_tune(
        inputs.loaded.model,
        d.train.x,
        d.train.y,
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=inputs.cfg.search.seed,
    )
    inputs.loaded.model.eval()
    acc = evaluate_accuracy(inputs.loaded.model, d.val.x, d.val.y)
    reporter.info(f"validation accuracy after training: {acc:.2%}")


def prepare_run(cfg: CompileConfig, out: Path, resume: bool, reporter: Reporter) -> tuple[Inputs, RunDir]:
    """Validate, then create (or reopen) the run directory and its base weights."""
    run = RunDir(out)
    run.check_usable(resume)
    if resume:
        try:
            stored = CompileConfig.from_yaml(run.config)
        except ConfigError as err:
            raise RunDirError(f"cannot resume {out}: {err}") from None
        changed = stored.differences(cfg)
        if changed:
            raise RunDirError(
                f"cannot resume {out}: the config changed ({', '.join(changed[:5])}); start a new run"
            )
    inputs = validate_inputs(cfg)
    from edgeprune.pipeline.latency_setup import ensure_latency_table

    ensure_latency_table(inputs, reporter)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    attach_log_file(str(run.log))
    try:
        if not resume:
            write_text_atomic(run.config, cfg.to_yaml())
        if not run.base_weights.exists():
            if cfg.model.weights is None:
                _pretrain(inputs, reporter)
            write_bytes_atomic(run.base_weights, _state_bytes(inputs.loaded.model))
        if not run.is_done("prepare"):
            run.mark_done("prepare", {"target": inputs.profile.name})
    except BaseException:
        if created and not run.is_done("prepare"):
            shutil.rmtree(out, ignore_errors=True)  # nothing of value yet: don't block the next run
        raise
    return inputs, run


def evaluator_spec(inputs: Inputs, run: RunDir) -> EvaluatorSpec:
    """The search's evaluator reads the run's own copy of the base weights."""
    model_cfg = inputs.cfg.model.model_copy(update={"weights": run.base_weights})
    return EvaluatorSpec(model_cfg, inputs.cfg.data, inputs.cfg.target, inputs.cfg.search)


# --- config resolution -----------------------------------------------------------------------------
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
    spec = EvaluatorSpec(inputs.cfg.model, cfg.data, cfg.target, cfg.search)
    evaluator = Evaluator(spec)
    space = build_space(evaluator)
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
