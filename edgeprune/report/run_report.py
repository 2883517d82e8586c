"""The report of a finished run: ``pareto.png``, ``report.html`` and the run-level ``manifest.json``.

``edgeprune compile`` calls :func:`write_run_report` last, after the influential filters
(:func:`edgeprune.report.influence.influential_filters`) are written, so the manifest hashes them too.
Plain data in, files out: nothing here knows the pipeline's config or how the picks were made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeprune.atomic import write_bytes_atomic, write_text_atomic
from edgeprune.export.manifest import sha256_file
from edgeprune.latency import HardwareProfile
from edgeprune.rundir import PICK_NAMES, RunDir
from edgeprune.search.result import SearchResult

RUN_MANIFEST_VERSION = 1
# never hashed: the search's own files (rewritten while a run goes on), the stage record, the log, and
# every manifest.json (the run's own, and the picks' ones, which the manifest names under "picks")
_UNHASHED_NAMES = ("manifest.json", "edgeprune.log", "run.json")
_UNHASHED_DIRS = ("search",)


def run_files(root: Path, skip: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file of the run directory ``root`` that the run manifest covers, by
    path relative to ``root`` (``/``-separated, sorted); the search's folder and the folders ``skip``
    (relative, ``/``-separated) are left out."""
    root = Path(root)
    skipped = tuple(f"{d.rstrip('/')}/" for d in (*_UNHASHED_DIRS, *skip))
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or path.name in _UNHASHED_NAMES or rel.as_posix().startswith(skipped):
            continue
        files[rel.as_posix()] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return files


def write_run_manifest(
    run: RunDir, *, model_name: str, target: str, latency_source: str, picks: Sequence[str] = PICK_NAMES
) -> Path:
    """Write ``manifest.json`` of the run: model, target, latency source, the shipped picks' manifests and
    :func:`run_files`.

    The folder of a pick that is not shipped — fine-tuned by an earlier ``--picks`` of a resumed run —
    stays on disk (an hour of training is not deleted), is named under ``not_shipped`` and is not hashed:
    the manifest covers what this run ships."""
    kept = [f"picks/{n}" for n in PICK_NAMES if n not in picks and run.pick(n).is_dir()]
    manifest = {
        "edgeprune_run": RUN_MANIFEST_VERSION,
        "model": model_name,
        "target": target,
        "latency_source": latency_source,
        "picks": {n: f"picks/{n}/manifest.json" for n in picks},
        "not_shipped": kept,
        "files": run_files(run.root, skip=kept),
    }
    return write_text_atomic(run.manifest, json.dumps(manifest, indent=1, sort_keys=True))


def pick_summaries(
    result: SearchResult,
    finalize: Mapping[str, Mapping[str, Any]],
    shipped: Mapping[str, Mapping[str, Any]],
    names: Sequence[str] = PICK_NAMES,
) -> dict[str, dict[str, Any]]:
    """Per shipped pick (``names``): its search metrics, what finalize recorded, and what ship recorded
    (verification)."""
    picks: dict[str, dict[str, Any]] = {}
    for name in names:
        c = result.candidates[result.picks[name]]
        picks[name] = {
            "metrics": c.metrics,
            "finalize": dict(finalize.get(name, {})),
            **shipped.get(name, {}),
        }
    return picks


def write_run_report(
    run: RunDir,
    result: SearchResult,
    *,
    model_name: str,
    profile: HardwareProfile,
    config_yaml: str,
    finalize: Mapping[str, Mapping[str, Any]],
    shipped: Mapping[str, Mapping[str, Any]],
    picks: Sequence[str] = PICK_NAMES,
    extra_sections: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Write ``pareto.png``, ``report.html`` and then the run manifest (which hashes every file written
    before it); returns ``{"picks": pick_summaries(...), "summary": the accuracy baselines}``.

    ``picks`` names the picks that were fine-tuned and shipped. ``finalize`` is what the finalize stage
    recorded per pick, plus ``"baseline"`` (the unpruned network fine-tuned with the same recipe) and
    ``"original"`` when known; ``shipped`` what ship recorded per pick; ``extra_sections`` (title, HTML) go
    into the page after the search's progress.
    """
    from edgeprune.report.html import json_block, render_report
    from edgeprune.report.pareto_csv import pareto_rows
    from edgeprune.report.plots import front_png, history_png

    png = front_png(result)
    write_bytes_atomic(run.pareto_png, png)
    summaries = pick_summaries(result, finalize, shipped, picks)
    target = {
        "name": profile.name,
        "runtime": profile.runtime,
        "precision": profile.precision,
        **profile.threading,
        "channel multiple": profile.channel_multiple,
    }
    summary = {
        "original test accuracy": finalize.get("original", {}).get("test_accuracy"),
        "unpruned fine-tuned test accuracy (same recipe)": finalize.get("baseline", {}).get("test_accuracy"),
        "evaluations": result.n_evals,
        "front size": len(result.front),
    }
    page = render_report(
        title=f"edgeprune: {model_name} for {profile.name}",
        target=target,
        latency_source=result.latency_source,
        front_rows=pareto_rows(result),
        picks=summaries,
        front_png=png,
        history_png=history_png(result.history),
        config_yaml=config_yaml,
        extra_sections=[("Baselines for the accuracy drop", json_block(summary)), *extra_sections],
    )
    write_text_atomic(run.report_html, page)
    write_run_manifest(
        run, model_name=model_name, target=profile.name, latency_source=result.latency_source, picks=picks
    )
    return {"picks": summaries, "summary": summary}
