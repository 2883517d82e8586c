"""``edgeprune ensemble RUN_DIR --size K`` (MO-EvoPruneDeepTL): an ensemble of diverse front members.

The K members are chosen on the front of a finished run by greedy max-min diversity of their
kept-filter masks (Jaccard distance), starting from the most accurate member; each is fine-tuned with
the run's recipe; their averaged probabilities form one model that is exported to ONNX and verified
like a pick. Accuracy and robustness (seeded corruptions) are reported for the ensemble and for
every member, in ``RUN_DIR/ensemble/ensemble.json``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeprune.atomic import write_text_atomic
from edgeprune.data import Split
from edgeprune.data.corruptions import CORRUPTIONS, corrupt
from edgeprune.ensemble import ProbabilityAverage, flat_mask, kept_masks, select_diverse
from edgeprune.errors import ConfigError, RunDirError
from edgeprune.graph import PruningPlan, analyze, apply_plan
from edgeprune.pipeline.inputs import validate_inputs
from edgeprune.pipeline.stages import base_network, finetune_bf16, finetune_pick
from edgeprune.pipeline_config import CompileConfig
from edgeprune.progress import Reporter
from edgeprune.rundir import RunDir
from edgeprune.search.evaluator import torch_threads
from edgeprune.train import evaluate_accuracy, recalibrate_changed_bn


def read_front(run: RunDir) -> list[tuple[PruningPlan, float]]:
    """(plan, search error) of every front member in ``pareto.csv``."""
    if not run.pareto_csv.is_file():
        raise RunDirError(f"{run.root} has no pareto.csv: finish the run first (edgeprune compile --resume)")
    with run.pareto_csv.open() as f:
        return [(PruningPlan.from_json(r["plan"]), float(r["error"])) for r in csv.DictReader(f)]


def candidate_pool(errors: Sequence[float], size: int, tolerance: float) -> list[int]:
    """Indices of the front members an ensemble of ``size`` draws from, in error order: those within
    ``tolerance`` of the best search error, or the ``size`` most accurate when fewer qualify."""
    order = sorted(range(len(errors)), key=lambda i: errors[i])
    best = errors[order[0]] if order else 0.0
    pool = [i for i in order if errors[i] <= best + tolerance]
    return pool if len(pool) >= size else order[:size]


def _robust_split(
    test: Split, mean: tuple[float, ...], std: tuple[float, ...], n: int, severity: int, seed: int
) -> Split:
    head = test.head(n)
    return Split(corrupt(head.x, mean, std, severity=severity, seed=seed), head.y.repeat(len(CORRUPTIONS)))


def ensemble_run(
    run_dir: Path,
    size: int,
    reporter: Reporter | None = None,
    robustness_images: int = 500,
    tolerance: float = 0.05,
) -> dict[str, Any]:
    """Build, measure, export and verify a ``size``-member ensemble of the run's front.

    Members are drawn from the front members whose search error is within ``tolerance`` of the best
    (widened in error order when fewer than ``size`` qualify): diversity among useful members.
    """
    from edgeprune.export.pick import ship_pick
    from edgeprune.latency import predictor_for
    from edgeprune.pipeline.stages import verification_runtime
    from edgeprune.verify.checks import VerifyThresholds
    from edgeprune.verify.pick import verify_pick

    reporter = reporter or Reporter()
    run = RunDir(run_dir)
    if not run.config.is_file():
        raise RunDirError(f"{run_dir} is not an edgeprune run directory (no config.yaml)")
    front = read_front(run)
    if size < 2:
        raise ConfigError(f"an ensemble needs at least 2 members, got --size {size}")
    if size > len(front):
        raise ConfigError(f"ensemble size {size} is larger than the front ({len(front)} members)")
    cfg = CompileConfig.from_yaml(run.config)
    inputs = validate_inputs(cfg)
    d = inputs.data
    base = base_network(inputs, run)  # the transfer network in transfer mode, not its backbone
    example = torch.zeros(1, *d.input_shape)
    analysis = analyze(base, example, inputs.profile.channel_multiple)
    reporter.stage("ensemble", f"choosing {size} diverse members of {len(front)} by their kept-filter masks")
    pool = candidate_pool([err for _, err in front], size, tolerance)
    masks = {i: flat_mask(kept_masks(base, analysis, front[i][0], example)) for i in pool}
    picked = select_diverse([masks[i] for i in pool], [front[i][1] for i in pool], size)
    chosen = [pool[j] for j in picked]
    robust = _robust_split(
        d.test, d.mean, d.std, robustness_images, cfg.search.corruption_severity, cfg.search.seed
    )
    members: list[torch.nn.Module] = []
    rows: list[dict[str, Any]] = []
    for rank in chosen:
        plan = front[rank][0]
        reporter.stage("ensemble", f"fine-tuning front member {rank}")
        net = recalibrate_changed_bn(base, apply_plan(base, plan, example), d.calib.x)
        net = finetune_pick(net, inputs, base, bf16=finetune_bf16(inputs, run, net, base, reporter))
        members.append(net)
        rows.append(
            {"front_rank": rank, "plan": plan.to_dict(), "params": sum(p.numel() for p in net.parameters())}
        )
    ens = ProbabilityAverage(members).eval()
    with torch_threads(1):
        for row, net in zip(rows, members, strict=True):
            row["test_accuracy"] = evaluate_accuracy(net, d.test.x, d.test.y)
            row["robust_accuracy"] = evaluate_accuracy(net, robust.x, robust.y)
        ens_acc = evaluate_accuracy(ens, d.test.x, d.test.y)
        ens_rob = evaluate_accuracy(ens, robust.x, robust.y)
    out = run.root / "ensemble"
    predictor = predictor_for(inputs.profile)
    # members run one after another: the sum of their predictions (each with its per-network overhead)
    predicted = sum(predictor.predict_ms(m, d.input_shape) for m in members)
    reporter.stage("export", f"ensemble ONNX for {inputs.profile.name}")
    ship_pick(
        out, ens, example, target=inputs.profile.name, precision="fp32", mean=d.mean, std=d.std, class_names=d.classes,
        expected_latency_ms=predicted, latency_source=predictor.source, model_name=None,
        threads=inputs.profile.threads, spinning=inputs.profile.spinning,
    )  # fmt: skip
    runtime, where, on_target = verification_runtime(inputs.profile, reporter)
    test = d.test.head(cfg.ship.verify_images)
    report = verify_pick(
        out, runtime=runtime, test_x=test.x.numpy(), test_y=test.y.numpy(), torch_model=ens,
        predicted_latency_ms=predicted if on_target else None, latency_source=predictor.source,
        thresholds=VerifyThresholds(min_images=min(len(test), cfg.ship.verify_images)), target=inputs.profile.name,
        precision="fp32",
    )  # fmt: skip
    pairwise = [
        float(1 - (masks[a] & masks[b]).sum() / max(1, (masks[a] | masks[b]).sum()))
        for i, a in enumerate(chosen)
        for b in chosen[i + 1 :]
    ]
    result = {
        "size": size,
        "members": rows,
        "mean_pairwise_mask_distance": float(np.mean(pairwise)),
        "candidate_pool": len(pool),
        "error_tolerance": tolerance,
        "ensemble_test_accuracy": ens_acc,
        "ensemble_robust_accuracy": ens_rob,
        "best_member_test_accuracy": max(r["test_accuracy"] for r in rows),
        "best_member_robust_accuracy": max(r["robust_accuracy"] for r in rows),
        "beats_every_member": bool(ens_acc > max(r["test_accuracy"] for r in rows)),
        "robustness": {
            "corruptions": list(CORRUPTIONS),
            "severity": cfg.search.corruption_severity,
            "images": robustness_images,
        },
        "predicted_latency_ms": predicted,
        "prediction": "sum of the members' predicted latencies",
        "latency_source": predictor.source,
        "measured_latency_ms": report.sections.get("latency", {}).get("median_ms"),
        "verified": report.passed,
        "verified_where": where,
    }
    write_text_atomic(out / "ensemble.json", json.dumps(result, indent=1, sort_keys=True))
    return result
