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


def missing_kernels(inputs: Inputs) -> list[Any]:
    """Kernels of the network the target's measured table does not cover (empty for estimates)."""
    from edgeprune.errors import ProfileError
    from edgeprune.latency import extract_kernels, predictor_for

    try:
        pred = predictor_for(inputs.profile)
    except ProfileError:
        return ["(no table yet)"]
    if pred.source == "estimate":
        return []
    if inputs.cfg.model.transfer:  # transfer mode: the new head's kernel sizes are often not in the table
        return _unpredictable_kernels(pred, inputs)
    keys = extract_kernels(inputs.loaded.model, inputs.data.input_shape, inputs.profile.precision)
    return [k for k in keys if not pred.covers_family(k)]


def _transfer_kernels(inputs: Inputs) -> list[Any]:
    """Every kernel a transfer network's search space can produce: the backbone's (as for the family
    itself) and the head's Linear layers over all kept widths of their inputs and hidden outputs."""
    from dataclasses import replace
    from itertools import product

    from edgeprune.latency import extract_kernels
    from edgeprune.latency.enumerate import channel_levels, enumerate_kernels

    net, shape = inputs.loaded.model, inputs.data.input_shape
    p = inputs.profile
    backbone = net.get_submodule("backbone")
    keys = dict.fromkeys(enumerate_kernels(backbone, shape, p.channel_multiple, p.precision))
    base = extract_kernels(net, shape, p.precision)
    heads = [(i, k) for i, k in enumerate(base) if k.op in ("gap_linear", "linear")]
    gap = heads[0][1]
    for j, (i, k) in enumerate(heads):
        couts = (k.cout,) if i == len(base) - 1 else channel_levels(k.cout, p.channel_multiple)
        # the kernel extractor labels a Linear "gap_linear" whenever its inputs equal the last feature
        # map's channels, the head's second Linear too: both of its labels are measured
        labels = {k} if j == 0 else {replace(gap, cin=k.cin, cout=k.cout), replace(k, op="linear", h=1, w=1)}
        for v, cin, cout in product(labels, channel_levels(k.cin, p.channel_multiple), couts):
            keys.setdefault(v.with_channels(cin, 0, cout), None)
    return list(keys)


def _unpredictable_kernels(pred: Any, inputs: Inputs) -> list[Any]:
    """Kernels of a transfer network's search space that the table cannot interpolate."""
    from edgeprune.errors import ProfileError

    missing = []
    for k in _transfer_kernels(inputs):
        try:
            pred.kernel_ms(k)
        except ProfileError:
            missing.append(k)
    return missing


def _measure_transfer_kernels(inputs: Inputs, keys: list[Any]) -> int:
    """Measure ``keys`` on this CPU into the host-cpu table (the head's sizes); returns how many."""
    from edgeprune.latency.profile_run import make_timer
    from edgeprune.latency.profiler import profile_kernels

    timer = make_timer(inputs.profile, None, None, warmup=30, runs=100)
    _, measured = profile_kernels(keys, inputs.profile.table_path(), timer, passes=3, warmup=30, runs=100)
    return measured


def ensure_latency_table(inputs: Inputs, reporter: Reporter) -> None:
    """On ``host-cpu`` (this machine) measure the kernels the table lacks; elsewhere say how to."""
    from edgeprune.errors import ProfileError
    from edgeprune.latency.profile_run import run_profile

    missing = missing_kernels(inputs)
    if not missing:
        return
    p = inputs.profile
    if p.name != "host-cpu" or p.runtime != "onnxruntime-cpu":
        raise ProfileError(
            f"the {p.name} table does not cover {inputs.cfg.model.name} (e.g. {missing[0]}); run `edgeprune profile "
            f"--target {p.name} --model {inputs.cfg.model.name}` on the device or through `edgeprune agent`"
        )
    reporter.stage(
        "profile", f"measuring the kernels of {inputs.cfg.model.name} on this CPU for the host-cpu table"
    )
    if inputs.cfg.model.transfer and missing != ["(no table yet)"]:  # transfer mode: the head's sizes
        n = _measure_transfer_kernels(inputs, missing)
        reporter.info(f"measured {n} kernels of the transfer network into {p.table_path()}")
        return
    summary = run_profile(
        p.name,
        inputs.cfg.model.name,
        input_shape=inputs.data.input_shape,
        num_classes=inputs.loaded.num_classes,
    )
    reporter.info(f"measured {summary.measured_now} kernels into {summary.table_path}")


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
