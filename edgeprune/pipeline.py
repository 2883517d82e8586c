"""``edgeprune compile``: load -> analyze -> space -> latency -> search -> finalize -> export -> verify -> report.

The only module that calls every stage. Each stage's outcome is recorded in ``run.json`` as it
finishes, so ``--resume`` continues a killed run where it stopped: the search replays from its
checkpoint, picks already fine-tuned or shipped are kept. Nothing is written until every input has
been validated, so bad input never leaves a half-written run directory behind.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from edgeprune.atomic import write_bytes_atomic, write_text_atomic
from edgeprune.config import ModelConfig
from edgeprune.data import DataBundle, load_data
from edgeprune.errors import ConfigError, DataError, RunDirError, SearchError, UnsupportedModelError
from edgeprune.graph import PruningPlan, apply_plan
from edgeprune.latency import HardwareProfile, load_profile
from edgeprune.models import LoadedModel, build_model
from edgeprune.pipeline_config import CompileConfig
from edgeprune.progress import Reporter, attach_log_file
from edgeprune.rundir import PICK_NAMES, RunDir
from edgeprune.search.evaluator import Evaluator, EvaluatorSpec, torch_threads
from edgeprune.search.result import SearchResult
from edgeprune.search.run import run_search
from edgeprune.space import SearchSpace
from edgeprune.train import evaluate_accuracy, fine_tune, recalibrate_bn

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
    profile = load_profile(cfg.target)
    data = load_data(cfg.data)
    num_classes = cfg.model.num_classes or data.num_classes
    model_cfg = cfg.model.model_copy(update={"num_classes": num_classes})
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


def _pretrain(inputs: Inputs, reporter: Reporter) -> None:
    cfg = inputs.cfg.pretrain
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
    keys = extract_kernels(inputs.loaded.model, inputs.data.input_shape, inputs.profile.precision)
    return [k for k in keys if not pred.covers_family(k)]


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


def check_budget(evaluator: Evaluator, space: SearchSpace, budget_ms: float | None) -> None:
    """Refuse a latency budget below the fastest network the space contains."""
    if budget_ms is None:
        return
    smallest = space.decode(space.repair(space.upper_bounds * 0))
    with torch_threads(1):
        fastest_ms = evaluator.predictor.predict_ms(
            apply_plan(evaluator.model, smallest, evaluator.example), evaluator.input_shape
        )
    if fastest_ms > budget_ms:
        raise SearchError(
            f"--budget-ms {budget_ms:g} is impossible: the fastest network in the search space takes "
            f"{fastest_ms:.3f} ms on {evaluator.profile.name} ({evaluator.latency_source})"
        )


def search_stage(inputs: Inputs, run: RunDir, resume: bool, reporter: Reporter) -> SearchResult:
    """Run (or resume) the search and write ``pareto.csv``."""
    from edgeprune.report.pareto_csv import write_pareto_csv

    spec = evaluator_spec(inputs, run)
    evaluator = Evaluator(spec)
    space = SearchSpace.from_analysis(
        evaluator.analysis, inputs.profile.channel_multiple, criterion=spec.search.criterion,
        depth_genes=spec.search.depth_genes, width_genes=spec.search.width_genes,
    )  # fmt: skip
    check_budget(evaluator, space, spec.search.budget_ms)
    reporter.stage(
        "search",
        f"{spec.search.strategy}, {space.n_var} genes ({space.size:.3g} genomes), objectives {', '.join(spec.search.objectives)}; "
        f"latency on {inputs.profile.name} is {evaluator.latency_source}",
    )
    reporter.search_started(spec.search.generations)

    def on_generation(gen: int, total: int) -> None:
        h = json.loads(run.search.joinpath("checkpoint.json").read_text())["history"][-1]
        reporter.generation(gen, total, int(h["n_evals"]), float(h["best_error"]), float(h["min_latency_ms"]))

    try:
        result = run_search(
            spec, run.search, resume=resume and run.search.joinpath("checkpoint.json").exists(), evaluator=evaluator,
            on_generation=on_generation, on_evaluated=reporter.evaluated,
        )  # fmt: skip
    finally:
        reporter.search_finished()
    write_pareto_csv(run.pareto_csv, result, space)
    run.mark_done("search", {"n_evals": result.n_evals, "front": len(result.front)})
    return result


def _finetune_copy(
    model: torch.nn.Module, inputs: Inputs, teacher: torch.nn.Module | None
) -> torch.nn.Module:
    cfg = inputs.cfg.finalize
    d = inputs.data
    if cfg.epochs:
        with torch_threads(training_threads(model, d.input_shape)):
            fine_tune(
                model, d.train.x, d.train.y, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                seed=inputs.cfg.search.seed, teacher=teacher if cfg.distill else None, kd_alpha=cfg.kd_alpha,
                temperature=cfg.temperature,
            )  # fmt: skip
    model.eval()
    return model


def finalize_stage(
    inputs: Inputs, run: RunDir, result: SearchResult, reporter: Reporter
) -> dict[str, dict[str, Any]]:
    """Fine-tune each pick (and the unpruned baseline) and measure test accuracy; one pick at a time, resumable."""
    d = inputs.data
    base = build_model(
        ModelConfig(
            name=inputs.cfg.model.name, num_classes=inputs.loaded.num_classes, weights=run.base_weights
        )
    ).model
    example = torch.zeros(1, *d.input_shape)
    summary: dict[str, dict[str, Any]] = {}
    original_acc = evaluate_accuracy(base, d.test.x, d.test.y)
    jobs: list[tuple[str, PruningPlan | None]] = [("baseline", None)] if inputs.cfg.finalize.baseline else []
    jobs += [(name, result.candidates[result.picks[name]].plan) for name in PICK_NAMES]
    for name, plan in jobs:
        stage = f"finalize:{name}"
        if run.is_done(stage):
            summary[name] = run.done_info(stage)
            continue
        reporter.stage("finalize", f"{name}: fine-tuning for {inputs.cfg.finalize.epochs} epochs")
        if plan is None:
            model = build_model(
                ModelConfig(
                    name=inputs.cfg.model.name,
                    num_classes=inputs.loaded.num_classes,
                    weights=run.base_weights,
                )
            ).model
        else:
            model = apply_plan(base, plan, example)
            recalibrate_bn(model, d.calib.x)
        acc_before = evaluate_accuracy(model, d.test.x, d.test.y)
        model = _finetune_copy(model, inputs, base)
        acc = evaluate_accuracy(model, d.test.x, d.test.y)
        folder = run.root / "finalize" / name if plan is None else run.pick(name)
        write_bytes_atomic(folder / "weights.pt", _state_bytes(model))
        if plan is not None:
            write_text_atomic(folder / "plan.json", plan.to_json())
        info = {
            "test_accuracy": round(acc, 6),
            "test_accuracy_before_finetune": round(acc_before, 6),
            "params": int(sum(p.numel() for p in model.parameters())),
        }
        run.mark_done(stage, info)
        summary[name] = info
        reporter.info(f"{name}: test accuracy {acc_before:.2%} -> {acc:.2%} after fine-tuning")
    summary["original"] = {"test_accuracy": round(original_acc, 6)}
    return summary


def load_pick_model(inputs: Inputs, run: RunDir, name: str) -> torch.nn.Module:
    """Rebuild a finalized pick from its plan and fine-tuned weights (no pickle beyond tensors)."""
    from edgeprune.models import load_weights

    d = inputs.data
    base = build_model(
        ModelConfig(
            name=inputs.cfg.model.name, num_classes=inputs.loaded.num_classes, weights=run.base_weights
        )
    ).model
    plan = PruningPlan.from_json(run.pick(name).joinpath("plan.json").read_text())
    model = apply_plan(base, plan, torch.zeros(1, *d.input_shape))
    load_weights(model, run.pick(name) / "weights.pt")
    return model.eval()


def write_resolved_config(path: Path, cfg: CompileConfig) -> None:
    write_text_atomic(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def _verification_runtime(profile: HardwareProfile, reporter: Reporter) -> tuple[Any, str]:
    """The target's runtime when it is usable here, else ONNX Runtime on this CPU (said plainly)."""
    from edgeprune.errors import RuntimeUnavailableError
    from edgeprune.runtime import get_runtime

    runtime = get_runtime(profile.runtime, profile.threads)
    if profile.runtime == "tensorrt":
        try:
            from edgeprune.runtime.tensorrt_rt import import_tensorrt

            import_tensorrt()
        except RuntimeUnavailableError:
            note = (f"{profile.runtime} is not available on this machine: parity and accuracy verified with ONNX Runtime "
                    "on the host CPU; build and verify the engine on the device (docs: shipping to a Jetson)")  # fmt: skip
            reporter.info(note)
            return get_runtime("onnxruntime-cpu", profile.threads), note
    return runtime, f"verified on {profile.runtime}"


def ship_stage(
    inputs: Inputs, run: RunDir, result: SearchResult, reporter: Reporter
) -> dict[str, dict[str, Any]]:
    """Export each pick for the target (ONNX; INT8 + calibration where asked), then verify it."""
    from edgeprune.export.int8 import load_recipe
    from edgeprune.export.pick import ship_pick
    from edgeprune.latency import predictor_for
    from edgeprune.verify.checks import VerifyThresholds
    from edgeprune.verify.pick import verify_pick

    cfg, profile, d = inputs.cfg, inputs.profile, inputs.data
    precision = profile.precision if cfg.ship.precision == "auto" else cfg.ship.precision
    predictor = predictor_for(profile, cfg.model.name)
    runtime, where = _verification_runtime(profile, reporter)
    test = d.test.head(cfg.ship.verify_images)
    thresholds = VerifyThresholds(min_images=min(len(test), cfg.ship.verify_images))
    example = torch.zeros(1, *d.input_shape)
    shipped: dict[str, dict[str, Any]] = {}
    for name in PICK_NAMES:
        stage = f"ship:{name}"
        if run.is_done(stage):
            shipped[name] = run.done_info(stage)
            continue
        reporter.stage("export", f"{name}: ONNX ({precision}) for {profile.name}")
        model = load_pick_model(inputs, run, name)
        with torch_threads(1):
            predicted = predictor.predict_ms(model, d.input_shape)
        ship_pick(
            run.pick(name), model, example, target=profile.name, precision=precision, mean=d.mean, std=d.std,
            class_names=d.classes, expected_latency_ms=predicted, latency_source=predictor.source,
            model_name=cfg.model.name, calib_x=d.train.x, recipe=load_recipe(profile.name) if precision == "int8" else None,
            dynamic_batch=cfg.ship.dynamic_batch,
        )  # fmt: skip
        reporter.stage("verify", f"{name}: {where}")
        report = verify_pick(
            run.pick(name), runtime=runtime, test_x=test.x.numpy(), test_y=test.y.numpy(), torch_model=model,
            predicted_latency_ms=predicted, latency_source=predictor.source, thresholds=thresholds,
            target=profile.name, precision=precision,
        )  # fmt: skip
        lat = report.sections.get("latency", {})
        info = {
            "verify": {
                "passed": report.passed,
                "checks": [c.to_dict() for c in report.checks],
                "where": where,
            },
            "measured_latency_ms": lat.get("median_ms"),
            "measured_on": f"{runtime.name}, {lat.get('threads')} thread(s)",
            "shipped_accuracy": report.sections.get("accuracy", {}).get("shipped"),
        }
        run.mark_done(stage, info)
        shipped[name] = info
        verdict = "passed" if report.passed else "FAILED: " + ", ".join(c.name for c in report.failed)
        reporter.info(
            f"{name}: verification {verdict}; measured {lat.get('median_ms', float('nan')):.4f} ms on {runtime.name}"
        )
    return shipped


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
    space = SearchSpace.from_analysis(
        evaluator.analysis, inputs.profile.channel_multiple, criterion=cfg.search.criterion
    )
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


# --- report ----------------------------------------------------------------------------------------
def report_stage(
    inputs: Inputs,
    run: RunDir,
    result: SearchResult,
    finalize: dict[str, dict[str, Any]],
    shipped: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """pareto.png, report.html and the run-level manifest.json."""
    import hashlib

    from edgeprune.report.html import json_block, render_report
    from edgeprune.report.pareto_csv import pareto_rows
    from edgeprune.report.plots import front_png, history_png

    png = front_png(result)
    write_bytes_atomic(run.pareto_png, png)
    picks: dict[str, dict[str, Any]] = {}
    for name in PICK_NAMES:
        c = result.candidates[result.picks[name]]
        picks[name] = {"metrics": c.metrics, "finalize": finalize.get(name, {}), **shipped.get(name, {})}
    p = inputs.profile
    target = {
        "name": p.name,
        "runtime": p.runtime,
        "precision": p.precision,
        "threads": p.threads,
        "channel multiple": p.channel_multiple,
    }
    base = finalize.get("baseline", {})
    summary = {
        "original test accuracy": finalize.get("original", {}).get("test_accuracy"),
        "unpruned fine-tuned test accuracy (same recipe)": base.get("test_accuracy"),
        "evaluations": result.n_evals,
        "front size": len(result.front),
    }
    page = render_report(
        title=f"edgeprune: {inputs.cfg.model.name} for {p.name}",
        target=target,
        latency_source=result.latency_source,
        front_rows=pareto_rows(result),
        picks=picks,
        front_png=png,
        history_png=history_png(result.history),
        config_yaml=inputs.cfg.to_yaml(),
        extra_sections=[("Baselines for the accuracy drop", json_block(summary))],
    )
    write_text_atomic(run.report_html, page)
    files = {}
    for path in sorted(run.root.rglob("*")):
        if (
            path.is_file()
            and path.parent.name != "search"
            and path.name not in ("manifest.json", "edgeprune.log", "run.json")
        ):
            files[str(path.relative_to(run.root))] = {
                "bytes": path.stat().st_size,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
    manifest = {
        "edgeprune_run": 1,
        "model": inputs.cfg.model.name,
        "target": p.name,
        "latency_source": result.latency_source,
        "picks": {n: f"picks/{n}/manifest.json" for n in PICK_NAMES},
        "files": files,
    }
    write_text_atomic(run.manifest, json.dumps(manifest, indent=1, sort_keys=True))
    return {"picks": picks, "summary": summary}


def _summary_text(run: RunDir, result: SearchResult, report: dict[str, Any]) -> str:
    lines = [
        f"run directory: {run.root}",
        f"front: {len(result.front)} members from {result.n_evals} evaluations",
    ]
    for name, info in report["picks"].items():
        m = info["metrics"]
        acc = info["finalize"].get("test_accuracy")
        verified = info.get("verify", {}).get("passed")
        lines.append(
            f"  {name:8s} test acc {acc:.2%}  params {int(m['params']):,}  latency {m['latency_ms']:.4f} ms ({result.latency_source})"
            + ("" if verified is None else ("  verified" if verified else "  VERIFY FAILED"))
        )
    lines.append(f"report: {run.report_html}")
    return "\n".join(lines)


def compile_run(
    cfg: CompileConfig, out: Path, *, resume: bool = False, reporter: Reporter | None = None
) -> dict[str, Any]:
    """The whole pipeline into run directory ``out``; resumable. Returns a summary."""
    reporter = reporter or Reporter()
    reporter.stage("load", f"model {cfg.model.name}, data {cfg.data.source}, target {cfg.target}")
    inputs, run = prepare_run(cfg, out, resume, reporter)
    result = search_stage(inputs, run, resume, reporter)
    finalize = finalize_stage(inputs, run, result, reporter)
    shipped = ship_stage(inputs, run, result, reporter)
    reporter.stage("report", str(run.report_html))
    report = report_stage(inputs, run, result, finalize, shipped)
    run.mark_done("report")
    payload = {
        "run_dir": str(run.root),
        "n_evals": result.n_evals,
        "front": len(result.front),
        "picks": {
            n: {
                "test_accuracy": report["picks"][n]["finalize"].get("test_accuracy"),
                **{k: report["picks"][n]["metrics"][k] for k in ("error", "params", "latency_ms")},
            }
            for n in PICK_NAMES
        },
        "latency_source": result.latency_source,
        "verified": all(report["picks"][n].get("verify", {}).get("passed", False) for n in PICK_NAMES),
    }
    reporter.result(payload)
    return {**payload, "summary_text": _summary_text(run, result, report)}
