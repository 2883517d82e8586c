"""``edgeprune compile``: load -> analyze -> space -> latency -> search -> finalize -> export -> verify -> report.

Every input is validated before the run directory is created (a refused run leaves nothing). Each
stage's outcome is recorded in ``run.json`` as it finishes, so ``--resume`` continues a run that was
killed or failed wherever it stopped: the search replays from its checkpoint and cache (or starts
again when it had none), picks already fine-tuned or shipped are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgeprune.pipeline.inputs import Inputs
from edgeprune.pipeline.prepare import RunLog, prepare_run
from edgeprune.pipeline.stages import base_network, finalize_stage, search_stage, ship_stage
from edgeprune.pipeline_config import CompileConfig
from edgeprune.progress import Reporter
from edgeprune.rundir import RunDir
from edgeprune.search.result import SearchResult


def report_stage(
    inputs: Inputs,
    run: RunDir,
    result: SearchResult,
    finalize: dict[str, dict[str, Any]],
    shipped: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """``influential_filters.csv``, then pareto.png, report.html and the run manifest (edgeprune.report)."""
    from edgeprune.report.influence import INFLUENCE_CSV, influential_filters
    from edgeprune.report.run_report import write_run_report

    influence_html = influential_filters(
        base_network(inputs, run), torch.zeros(1, *inputs.data.input_shape), inputs.profile.channel_multiple,
        [c.plan for c in result.front_candidates()], run.root / INFLUENCE_CSV,
    )  # fmt: skip
    return write_run_report(
        run, result, model_name=inputs.cfg.model.name, profile=inputs.profile, config_yaml=inputs.cfg.to_yaml(),
        finalize=finalize, shipped=shipped, picks=inputs.cfg.finalize.picks,
        extra_sections=[("Influential filters", influence_html)],
    )  # fmt: skip


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
    run_log = RunLog()  # in memory until the run directory exists (a refused run writes nothing)
    try:
        reporter.stage("load", f"model {cfg.model.name}, data {cfg.data.source}, target {cfg.target}")
        inputs, run = prepare_run(cfg, out, resume, reporter, run_log)
        result = search_stage(inputs, run, resume, reporter)
        finalize = finalize_stage(inputs, run, result, reporter)
        shipped = ship_stage(inputs, run, result, reporter)
        reporter.stage("report", str(run.report_html))
        report = report_stage(inputs, run, result, finalize, shipped)
        run.mark_done("report")
    finally:
        run_log.close()
    payload = {
        "run_dir": str(run.root),
        "n_evals": result.n_evals,
        "front": len(result.front),
        "picks": {
            n: {
                "test_accuracy": report["picks"][n]["finalize"].get("test_accuracy"),
                **{k: report["picks"][n]["metrics"][k] for k in ("error", "params", "latency_ms")},
            }
            for n in inputs.cfg.finalize.picks
        },
        "latency_source": result.latency_source,
        "verified": all(
            report["picks"][n].get("verify", {}).get("passed", False) for n in inputs.cfg.finalize.picks
        ),
    }
    reporter.result(payload)
    return {**payload, "summary_text": _summary_text(run, result, report)}
