"""Load and validate what a run needs (model, data, target, latency table, search limits) and prepare
its directory.

Nothing is written until every input has been validated and the base network exists (trained from
scratch when no weights are given): a refused run leaves no directory behind, and a run directory,
once it exists, always holds a run that ``--resume`` continues (see ``docs/reference/run-directory.md``
for which config changes a resume accepts).
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass
from logging.handlers import MemoryHandler
from pathlib import Path
from typing import Any

import torch
import yaml

from edgeprune.atomic import write_text_atomic
from edgeprune.data import DataBundle, load_data
from edgeprune.errors import (
    ConfigError,
    DataError,
    RunDirError,
    SearchError,
    UnsupportedModelError,
    UntrainedModelError,
)
from edgeprune.latency import HardwareProfile, load_profile
from edgeprune.models import LoadedModel, build_model, load_weights, read_state_dict
from edgeprune.models.transfer import parse_transfer_spec, transfer_spec
from edgeprune.pipeline_config import CompileConfig, config_stage
from edgeprune.progress import Reporter, attach_log_file
from edgeprune.rundir import PICK_NAMES, RunDir
from edgeprune.search.evaluator import Evaluator, EvaluatorSpec, torch_threads
from edgeprune.search.run import build_space
from edgeprune.space import SearchSpace
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
    """Load target, weights, data and model and check they fit together; raises before anything is
    written. The cheap checks come first, so a bad target or weights file fails before data loads."""
    check_transfer(cfg)
    profile = load_profile(cfg.target)
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
        evaluator = Evaluator(EvaluatorSpec(cfg.model, cfg.data, cfg.target, cfg.search))
        space = build_space(evaluator)
        fastest = space.decode(space.repair(space.upper_bounds * 0))
        with torch_threads(1):
            smallest = apply_plan(evaluator.model, fastest, evaluator.example)
            fastest_ms = float(evaluator.predictor.predict_ms(smallest, evaluator.input_shape))
            unpruned_ms = float(evaluator.predictor.predict_ms(evaluator.model, evaluator.input_shape))
    target = f"{evaluator.profile.name} ({evaluator.latency_source})"
    budget = cfg.search.budget_ms
    est = inputs.profile.estimate
    if budget is not None and evaluator.latency_source == "estimate" and est is not None and est.ranking_only:
        raise SearchError(
            f"--budget-ms is refused on {inputs.profile.name}: its estimate is for ranking only (not within 2x "
            f"of published measurements of the device); profile the device (`edgeprune profile --target "
            f"{inputs.profile.name}`) or drop --budget-ms and pick from the front"
        )
    if budget is not None and fastest_ms > budget:
        raise SearchError(
            f"--budget-ms {budget:g} is impossible: the fastest network in the search space takes "
            f"{fastest_ms:.3f} ms on {target}"
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


def _train_new_head(inputs: Inputs, reporter: Reporter) -> float:
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
    return acc


# --- training from scratch -------------------------------------------------------------------------
UNTRAINED_MIN_MARGIN = 0.02


def chance_accuracy(y: torch.Tensor, num_classes: int) -> float:
    """The accuracy of guessing: uniform guessing (1/classes) or always the majority class, whichever
    is higher."""
    counts = torch.bincount(y.long(), minlength=num_classes)
    return max(1.0 / num_classes, float(counts.max()) / max(1, len(y)))


def untrained_below(chance: float, n: int) -> float:
    """The accuracy a network trained from scratch must exceed to count as trained: chance plus two
    binomial standard errors of ``n`` validation images (at least 2 points), so a lucky guesser on a
    small split does not pass."""
    return chance + max(UNTRAINED_MIN_MARGIN, 2.0 * math.sqrt(chance * (1.0 - chance) / max(1, n)))


def check_trained(inputs: Inputs, acc: float) -> dict[str, float]:
    """Refuse a network trained from scratch that ended at or near chance (unless allowed)."""
    d = inputs.data
    chance = chance_accuracy(d.val.y, d.num_classes)
    bar = untrained_below(chance, len(d.val))
    info = {"val_accuracy": round(acc, 6), "chance_accuracy": round(chance, 6)}
    if acc > bar or inputs.cfg.pretrain.allow_untrained:
        return info
    raise UntrainedModelError(
        f"{inputs.cfg.model.name} trained from scratch for {inputs.cfg.pretrain.epochs} epochs reached "
        f"{acc:.1%} validation accuracy, no better than chance ({chance:.1%}; it needs above {bar:.1%}): "
        "give --weights of a trained network, train longer (pretrain.epochs in --config), or add "
        "--allow-untrained to compress it anyway"
    )


def _pretrain(inputs: Inputs, reporter: Reporter) -> float:
    """Train the network from scratch (the transfer head, in transfer mode); returns validation accuracy."""
    cfg = inputs.cfg.pretrain
    if inputs.cfg.model.transfer:
        return _train_new_head(inputs, reporter)
    d = inputs.data
    reporter.stage(
        "pretrain",
        f"no --weights: training {inputs.cfg.model.name} from scratch for {cfg.epochs} epochs on "
        f"{len(d.train):,} images (--weights FILE compresses a trained network instead)",
    )
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
    chance = chance_accuracy(d.val.y, d.num_classes)
    reporter.info(f"validation accuracy after training: {acc:.2%} (chance {chance:.2%})")
    return acc


# --- the run directory -----------------------------------------------------------------------------
class RunLog:
    """The ``edgeprune`` log of a run: held in memory until the run directory exists, then written to
    its ``edgeprune.log`` (appending); :meth:`close` detaches it."""

    def __init__(self) -> None:
        self._memory: MemoryHandler | None = MemoryHandler(capacity=1 << 30, flushLevel=logging.CRITICAL + 1)
        self._file: logging.Handler | None = None
        log.addHandler(self._memory)
        log.setLevel(logging.INFO)

    def open(self, path: Path) -> None:
        if self._file is not None:
            return
        self._file = attach_log_file(str(path))
        if self._memory is not None:
            self._memory.setTarget(self._file)
            self._memory.flush()
            log.removeHandler(self._memory)
            self._memory = None

    def close(self) -> None:
        for handler in (self._memory, self._file):
            if handler is not None:
                log.removeHandler(handler)
                handler.close()
        self._memory = self._file = None


_WHY_NOT = {
    "prepare": "it fixes the base network and the data splits the run is built on",
    "search": "the search has finished with the old value",
    "finalize": "picks are already fine-tuned with the old value",
    "ship": "picks are already shipped with the old value",
}


def resume_changes(run: RunDir, stored: CompileConfig, cfg: CompileConfig) -> list[str]:
    """The changed config fields a resume accepts; raises naming the first it refuses.

    A field is accepted when the stage whose outcome it changes (:func:`config_stage`) has finished
    nothing yet; fields that never change results (``RESULT_NEUTRAL``) are not listed at all.
    """
    changed = stored.differences(cfg)
    for field in changed:
        stage = config_stage(field)
        if stage == "prepare" or run.finished(stage):
            raise RunDirError(
                f"cannot resume {run.root}: the config changed ({', '.join(changed[:5])}), and {field} cannot "
                f"change now: {_WHY_NOT[stage]}; resume with the run's config.yaml or start a new run "
                "with another --out"
            )
    return changed


def _same_probe(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.get("source") != b.get("source"):
        return False
    return all(
        math.isclose(float(a.get(k, math.nan)), float(b.get(k, math.nan)), rel_tol=1e-9, abs_tol=1e-12)
        for k in ("unpruned_ms", "fastest_ms")
    )


def _restart(run: RunDir, stages: set[str], reporter: Reporter, why: str) -> None:
    """Discard the partial work of stages that restart (they have finished nothing)."""
    if "search" in stages and run.search.exists():
        cache = run.search / "cache.jsonl"
        n = sum(1 for _ in cache.open("rb")) if cache.is_file() else 0
        shutil.rmtree(run.search)
        for path in (run.pareto_csv, run.pareto_png):
            path.unlink(missing_ok=True)
        reporter.info(f"{why}: the unfinished search starts again ({n} evaluations discarded)")
    if "ship" in stages:  # an unfinished export: keep only what finalize wrote
        for name in PICK_NAMES:
            folder = run.pick(name)
            for path in folder.iterdir() if folder.is_dir() else ():
                if path.is_file() and path.name not in ("weights.pt", "plan.json"):
                    path.unlink()


def _reopen(
    run: RunDir, cfg: CompileConfig, inputs: Inputs, probe: dict[str, Any], reporter: Reporter
) -> None:
    """Continue an existing run: apply the accepted config changes and check the latency table."""
    stored = CompileConfig.from_yaml(run.config)
    changed = resume_changes(run, stored, cfg)
    restart = {config_stage(f) for f in changed}
    prepare = run.done_info("prepare")
    old_probe = prepare.get("latency_probe")
    table_changed = isinstance(old_probe, dict) and not _same_probe(old_probe, probe)
    if table_changed and isinstance(old_probe, dict):
        if run.is_done("search"):
            raise RunDirError(
                f"cannot resume {run.root}: the latency table of {inputs.profile.name} changed since the search "
                f"ran (the unpruned network predicts {probe['unpruned_ms']:.4f} ms, was "
                f"{float(old_probe['unpruned_ms']):.4f} ms); start a new run with another --out"
            )
        restart.add("search")
    if old_probe is None:  # a run from before the probe: from now on a changed table is told
        run.mark_done("prepare", {**prepare, "latency_probe": probe})
    if changed or table_changed:
        what = ", ".join(changed) + (" and " if changed and table_changed else "")
        what += "the latency table" if table_changed else ""
        _restart(run, restart, reporter, f"{what} changed")
        if changed:
            write_text_atomic(run.config, cfg.to_yaml())
        run.mark_done("prepare", {**prepare, "latency_probe": probe})
        reporter.info(f"resuming with {what} changed ({', '.join(sorted(restart))} not started yet)")
    load_weights(inputs.loaded.model, run.base_weights)  # the run's own base network
    inputs.loaded.model.eval()


def prepare_run(
    cfg: CompileConfig, out: Path, resume: bool, reporter: Reporter, run_log: RunLog | None = None
) -> tuple[Inputs, RunDir]:
    """Validate everything, then create (or reopen) the run directory and its base weights.

    A new run directory appears only once the inputs are valid, the latency table covers the network,
    the search limits are feasible and the base network exists (trained from scratch in memory when no
    weights are given, refused when it ends at chance): a refused run leaves nothing behind.
    """
    from edgeprune.pipeline.latency_setup import ensure_latency_table

    run = RunDir(out)
    run.check_usable(resume)
    if resume:
        try:
            stored = CompileConfig.from_yaml(run.config)
        except ConfigError as err:
            raise RunDirError(f"cannot resume {out}: {err}") from None
        run.read_state()  # a damaged run.json is refused before any work
        resume_changes(run, stored, cfg)  # refuse early; applied once the inputs are valid
    inputs = validate_inputs(cfg)
    ensure_latency_table(inputs, reporter)
    _, _, probe = search_preflight(inputs)
    if resume:
        _reopen(run, cfg, inputs, probe, reporter)
        if run_log is not None:
            run_log.open(run.log)
        return inputs, run
    info: dict[str, Any] = {"target": inputs.profile.name, "latency_probe": probe}
    if cfg.model.weights is None:
        acc = _pretrain(inputs, reporter)
        if not inputs.cfg.model.transfer:
            info["pretrain"] = check_trained(inputs, acc)
    run.create(
        {
            run.config.name: cfg.to_yaml().encode(),
            str(run.base_weights.relative_to(run.root)): _state_bytes(inputs.loaded.model),
        },
        info,
    )
    if run_log is not None:
        run_log.open(run.log)
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
