"""The middle stages of a run: search, finalize (fine-tune the picks) and ship (export + verify)."""

from __future__ import annotations

from typing import Any

import torch

from edgeprune.atomic import write_bytes_atomic, write_text_atomic
from edgeprune.errors import SearchError
from edgeprune.export.rebuild import load_pick, rebuild
from edgeprune.graph import PruningPlan, apply_plan
from edgeprune.latency import HardwareProfile
from edgeprune.models.transfer import transfer_spec
from edgeprune.pipeline.inputs import Inputs, evaluator_spec
from edgeprune.pipeline.prepare import state_bytes
from edgeprune.pipeline.pretrain import train_head, training_threads
from edgeprune.progress import Reporter
from edgeprune.rundir import RunDir
from edgeprune.search.evaluator import Evaluator, torch_threads
from edgeprune.search.result import SearchResult
from edgeprune.search.run import build_space, run_search
from edgeprune.space import SearchSpace
from edgeprune.train import evaluate_accuracy, fine_tune, recalibrate_changed_bn


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
    space = build_space(evaluator)
    check_budget(evaluator, space, spec.search.budget_ms)
    reporter.stage(
        "search",
        f"{spec.search.strategy}, {space.n_var} genes ({space.size:.3g} genomes), objectives {', '.join(spec.search.objectives)}; "
        f"latency on {inputs.profile.name} is {evaluator.latency_source}"
        + ("" if spec.search.budget_ms is None else f"; budget {spec.search.budget_ms:.4g} ms"),
    )
    reporter.search_started(spec.search.generations)

    def on_generation(gen: int, total: int, h: dict[str, float]) -> None:  # h: the generation's record
        reporter.generation(gen, total, int(h["n_evals"]), float(h["best_error"]), float(h["min_latency_ms"]))

    try:
        result = run_search(
            spec, run.search, resume=resume and run.search.exists(), evaluator=evaluator,
            on_generation=on_generation, on_evaluated=reporter.evaluated,
        )  # fmt: skip
    finally:
        reporter.search_finished()
    write_pareto_csv(run.pareto_csv, result, space)
    run.mark_done("search", {"n_evals": result.n_evals, "front": len(result.front)})
    return result


def base_network(inputs: Inputs, run: RunDir) -> torch.nn.Module:
    """The run's base network, the one its plans prune: the transfer network in transfer mode (not its
    backbone), with the run's own copy of the weights (``base/weights.pt``)."""
    return rebuild(transfer_spec(inputs.cfg.model), inputs.loaded.num_classes, base_weights=run.base_weights)


def native_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16, AMX-BF16, Arm BF16)."""
    from edgeprune.latency.timing import cpu_info

    return bool({"avx512_bf16", "amx_bf16", "bf16"} & set(cpu_info()["isa"]))


FINETUNE_PRECISION = "finetune_precision"  # the run's record of what ``finalize.precision: auto`` chose


def finetune_bf16(
    inputs: Inputs, run: RunDir, model: torch.nn.Module, teacher: torch.nn.Module | None, reporter: Reporter
) -> bool:
    """Whether fine-tuning runs its forward passes in bfloat16: ``finalize.precision`` ``bf16``; for
    ``auto``, where the CPU has native bfloat16 and a training step of ``model`` (with its ``teacher``)
    measured on this CPU is at least 10 % faster in it. The choice is made once per run (the first
    network it fine-tunes) and kept in ``run.json``, so a resumed run trains alike."""
    cfg = inputs.cfg.finalize
    if not cfg.epochs:  # nothing is fine-tuned
        return False
    if cfg.precision != "auto":
        return cfg.precision == "bf16"
    if inputs.cfg.model.transfer:  # transfer mode trains the head alone, in float32 (finetune_pick)
        return False
    if run.is_done(FINETUNE_PRECISION):
        return bool(run.done_info(FINETUNE_PRECISION)["bf16"])
    if not native_bf16():
        run.mark_done(FINETUNE_PRECISION, {"bf16": False, "why": "no native bfloat16 on this CPU"})
        return False
    from edgeprune.train.precision import time_training_step

    d = inputs.data
    with torch_threads(training_threads(model, d.input_shape)):
        timing = time_training_step(
            model, d.train.x, d.train.y, batch_size=cfg.batch_size, teacher=teacher if cfg.distill else None
        )
    run.mark_done(FINETUNE_PRECISION, timing.to_dict())
    reporter.info(
        f"fine-tuning precision (auto): a training step takes {timing.fp32_ms:.0f} ms in float32 and "
        f"{timing.bf16_ms:.0f} ms in bfloat16 on this CPU; fine-tuning in {'bfloat16' if timing.use_bf16 else 'float32'}"
    )
    return timing.use_bf16


def finetune_pick(
    model: torch.nn.Module, inputs: Inputs, teacher: torch.nn.Module | None, *, bf16: bool = False
) -> torch.nn.Module:
    """Fine-tune a pick with the finalize recipe (SGD, cosine schedule, random crop + flip; distilled
    from ``teacher`` when ``finalize.distill``; forward passes in bfloat16 when ``bf16``, see
    :func:`finetune_bf16`). Transfer mode trains only the kept head neurons: the (pruned,
    BN-recalibrated) backbone stays frozen, parameters and BN statistics."""
    cfg = inputs.cfg.finalize
    d = inputs.data
    if cfg.epochs and inputs.cfg.model.transfer:  # transfer mode: the head only
        train_head(model, d.train.x, d.train.y, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                   seed=inputs.cfg.search.seed)  # fmt: skip
    elif cfg.epochs:
        with torch_threads(training_threads(model, d.input_shape)):
            fine_tune(
                model, d.train.x, d.train.y, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                seed=inputs.cfg.search.seed, teacher=teacher if cfg.distill else None, kd_alpha=cfg.kd_alpha,
                temperature=cfg.temperature, bf16=bf16,
            )  # fmt: skip
    model.eval()
    return model


def finalize_teacher(inputs: Inputs, run: RunDir, base: torch.nn.Module) -> torch.nn.Module:
    """Whom the picks distil from: the unpruned network fine-tuned with the same recipe when this run
    trained it (``finalize/baseline/weights.pt``), else the base network itself."""
    tuned = run.root / "finalize" / "baseline" / "weights.pt"
    if inputs.cfg.finalize.baseline and run.is_done("finalize:baseline") and tuned.is_file():
        spec = transfer_spec(inputs.cfg.model)
        return rebuild(spec, inputs.loaded.num_classes, base_weights=run.base_weights, weights=tuned)
    return base


def finalize_stage(
    inputs: Inputs, run: RunDir, result: SearchResult, reporter: Reporter
) -> dict[str, dict[str, Any]]:
    """Fine-tune the unpruned baseline (never distilled), then each pick (distilled from the tuned baseline
    when asked), and measure test accuracy; one job at a time, resumable. Picks that are the same network
    (a small search often names one member twice) are fine-tuned once and the result is shared."""
    d = inputs.data
    base = base_network(inputs, run)
    example = torch.zeros(1, *d.input_shape)
    summary: dict[str, dict[str, Any]] = {}
    original_acc = evaluate_accuracy(base, d.test.x, d.test.y)
    jobs: list[tuple[str, PruningPlan | None]] = [("baseline", None)] if inputs.cfg.finalize.baseline else []
    jobs += [(name, result.candidates[result.picks[name]].plan) for name in inputs.cfg.finalize.picks]
    first_of: dict[str, str] = {}  # plan key -> the pick whose fine-tuned weights that plan shares
    for name, plan in jobs:  # a pick fine-tuned before (a resumed run that adds picks) comes first
        if (
            plan is not None
            and run.is_done(f"finalize:{name}")
            and "same_as" not in run.done_info(f"finalize:{name}")
        ):
            first_of.setdefault(plan.key(), name)
    for name, plan in jobs:
        stage = f"finalize:{name}"
        same = first_of.setdefault(plan.key(), name) if plan is not None else name
        if run.is_done(stage):
            summary[name] = run.done_info(stage)
            continue
        folder = run.root / "finalize" / name if plan is None else run.pick(name)
        if same != name:  # the same network as an earlier pick: share its fine-tuned weights
            write_bytes_atomic(folder / "weights.pt", run.pick(same).joinpath("weights.pt").read_bytes())
            write_text_atomic(folder / "plan.json", run.pick(same).joinpath("plan.json").read_text())
            info = {**run.done_info(f"finalize:{same}"), "same_as": same}
            run.mark_done(stage, info)
            summary[name] = info
            reporter.info(f"{name}: the same network as the {same} pick; its fine-tuned weights are shared")
            continue
        reporter.stage("finalize", f"{name}: fine-tuning for {inputs.cfg.finalize.epochs} epochs")
        if plan is None:
            model = base_network(inputs, run)
        else:
            model = recalibrate_changed_bn(base, apply_plan(base, plan, example), d.calib.x)
        acc_before = evaluate_accuracy(model, d.test.x, d.test.y)
        # the baseline is the reference the picks answer to: plain fine-tuning (no teacher); the picks distil
        # from it once it is tuned
        teacher = finalize_teacher(inputs, run, base) if plan is not None else None
        model = finetune_pick(
            model, inputs, teacher, bf16=finetune_bf16(inputs, run, model, teacher, reporter)
        )
        acc = evaluate_accuracy(model, d.test.x, d.test.y) if inputs.cfg.finalize.epochs else acc_before
        write_bytes_atomic(folder / "weights.pt", state_bytes(model))
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


def verification_runtime(profile: HardwareProfile, reporter: Reporter) -> tuple[Any, str, bool]:
    """(runtime, where, on_target): the target's runtime when usable here, else ONNX Runtime on this
    CPU (said plainly; host timings are then never judged against the target's latency table)."""
    from edgeprune.errors import RuntimeUnavailableError
    from edgeprune.runtime import get_runtime

    runtime = get_runtime(profile.runtime, profile.threads, profile.spinning)
    if profile.runtime == "tensorrt":
        try:
            from edgeprune.runtime.tensorrt_rt import import_tensorrt

            import_tensorrt()
        except RuntimeUnavailableError:
            note = (f"{profile.runtime} is not available on this machine: parity and accuracy verified with ONNX Runtime "
                    "on the host CPU; build and verify the engine on the device (docs: shipping to a Jetson)")  # fmt: skip
            reporter.info(note)
            return get_runtime("onnxruntime-cpu", profile.threads, profile.spinning), note, False
    return runtime, f"verified on {profile.runtime}", True


def ship_stage(
    inputs: Inputs, run: RunDir, result: SearchResult, reporter: Reporter
) -> dict[str, dict[str, Any]]:
    """Export each pick for the target (ONNX; INT8 + calibration where asked), then verify it."""
    from edgeprune.export.int8 import load_recipe
    from edgeprune.export.pick import ship_pick
    from edgeprune.latency import predictor_for
    from edgeprune.latency.store import latency_reference
    from edgeprune.verify.checks import VerifyThresholds
    from edgeprune.verify.pick import verify_pick

    cfg, profile, d = inputs.cfg, inputs.profile, inputs.data
    precision = profile.precision if cfg.ship.precision == "auto" else cfg.ship.precision
    predictor = predictor_for(profile)
    runtime, where, on_target = verification_runtime(profile, reporter)
    reference = latency_reference(profile) if on_target else None
    test = d.test.head(cfg.ship.verify_images)  # splits are shuffled: a fair sample of every class
    thresholds = VerifyThresholds(min_images=min(len(test), cfg.ship.verify_images))
    example = torch.zeros(1, *d.input_shape)
    shipped: dict[str, dict[str, Any]] = {}
    for name in cfg.finalize.picks:
        stage = f"ship:{name}"
        if run.is_done(stage):
            shipped[name] = run.done_info(stage)
            continue
        reporter.stage("export", f"{name}: ONNX ({precision}) for {profile.name}")
        # the finalized pick: its plan on the run's base network, its fine-tuned weights
        model = load_pick(
            run.pick(name), model_name=transfer_spec(cfg.model), num_classes=inputs.loaded.num_classes,
            input_shape=d.input_shape, base_weights=run.base_weights,
        )  # fmt: skip
        with torch_threads(1):
            predicted = predictor.predict_ms(model, d.input_shape)
        ship_pick(
            run.pick(name), model, example, target=profile.name, precision=precision, mean=d.mean, std=d.std,
            class_names=d.classes, expected_latency_ms=predicted, latency_source=predictor.source,
            model_name=transfer_spec(cfg.model), calib_x=d.train.x, recipe=load_recipe(profile.name) if precision == "int8" else None,
            dynamic_batch=cfg.ship.dynamic_batch, threads=profile.threads, spinning=profile.spinning,
        )  # fmt: skip
        reporter.stage("verify", f"{name}: {where}")
        report = verify_pick(
            run.pick(name), runtime=runtime, test_x=test.x.numpy(), test_y=test.y.numpy(), torch_model=model,
            predicted_latency_ms=predicted if on_target else None, latency_source=predictor.source,
            thresholds=thresholds, target=profile.name, precision=precision, prediction_precision=profile.precision,
            reference=reference,
        )  # fmt: skip
        lat = report.sections.get("latency", {})
        info = {
            "verify": {
                "passed": report.passed,
                "checks": [c.to_dict() for c in report.checks],
                "where": where,
            },
            "measured_latency_ms": lat.get("median_ms"),
            "measured_on": f"{runtime.name}, {lat.get('threads')} thread(s)"
            + ("" if "spinning" not in lat else f", spinning {'on' if lat['spinning'] else 'off'}"),
            "shipped_accuracy": report.sections.get("accuracy", {}).get("shipped"),
        }
        run.mark_done(stage, info)
        shipped[name] = info
        verdict = "passed" if report.passed else "FAILED: " + ", ".join(c.name for c in report.failed)
        reporter.info(
            f"{name}: verification {verdict}; measured {lat.get('median_ms', float('nan')):.4f} ms on {runtime.name}"
        )
    return shipped
