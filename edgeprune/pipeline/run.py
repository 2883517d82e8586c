"""``edgeprune compile``: load -> analyze -> space -> latency -> search -> finalize -> export -> verify -> report.

Every input is validated before the run directory is created (a refused run leaves nothing). Each
stage's outcome is recorded in ``run.json`` as it finishes, so ``--resume`` continues a run that was
killed or failed wherever it stopped: the search replays from its checkpoint and cache (or starts
again when it had none), picks already fine-tuned or shipped are kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from edgeprune.atomic import write_bytes_atomic, write_text_atomic
from edgeprune.config import ModelConfig
from edgeprune.pipeline.inputs import Inputs
from edgeprune.pipeline.prepare import RunLog, prepare_run
from edgeprune.pipeline.stages import finalize_stage, search_stage, ship_stage
from edgeprune.pipeline_config import CompileConfig
from edgeprune.progress import Reporter
from edgeprune.rundir import PICK_NAMES, RunDir
from edgeprune.search.result import SearchResult


# --- report ----------------------------------------------------------------------------------------
def influential_filters(inputs: Inputs, run: RunDir, result: SearchResult) -> str:
    """Write ``influential_filters.csv`` and return the report's heatmap section (MO-EvoPruneDeepTL)."""
    import base64

    from edgeprune.ensemble import keep_frequency, kept_masks
    from edgeprune.graph import analyze
    from edgeprune.models import build_model
    from edgeprune.report.influence import influence_png, write_influence_csv

    base_cfg = ModelConfig(
        name=inputs.cfg.model.name, num_classes=inputs.loaded.num_classes, weights=run.base_weights
    )
    base = build_model(base_cfg).model
    example = torch.zeros(1, *inputs.data.input_shape)
    analysis = analyze(base, example, inputs.profile.channel_multiple)
    masks = [kept_masks(base, analysis, c.plan, example) for c in result.front_candidates()]
    freq = keep_frequency(masks)
    write_influence_csv(run.root / "influential_filters.csv", freq)
    png = base64.b64encode(influence_png(freq, len(masks))).decode()
    return (
        "<p class='sub'>fraction of the front's members that keep each filter "
        "(influential_filters.csv has the figures)</p>"
        f'<img alt="influential filters" src="data:image/png;base64,{png}">'
    )


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
    influence_html = influential_filters(inputs, run, result)
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
        extra_sections=[
            ("Baselines for the accuracy drop", json_block(summary)),
            ("Influential filters", influence_html),
        ],
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
            for n in PICK_NAMES
        },
        "latency_source": result.latency_source,
        "verified": all(report["picks"][n].get("verify", {}).get("passed", False) for n in PICK_NAMES),
    }
    reporter.result(payload)
    return {**payload, "summary_text": _summary_text(run, result, report)}
