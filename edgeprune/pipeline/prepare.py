"""Create (or reopen) a run directory once its inputs are valid: the base weights, the config, the
progress record, and the rules for what a ``--resume`` may change (``docs/reference/run-directory.md``).
"""

from __future__ import annotations

import logging
import math
import shutil
from logging.handlers import MemoryHandler
from pathlib import Path
from typing import Any

import torch

from edgeprune.atomic import write_text_atomic
from edgeprune.errors import ConfigError, RunDirError
from edgeprune.models import load_weights
from edgeprune.pipeline.inputs import Inputs, resolve_budget, search_preflight, validate_inputs
from edgeprune.pipeline.latency_setup import ensure_latency_table
from edgeprune.pipeline.pretrain import check_trained, pretrain
from edgeprune.pipeline_config import CompileConfig, config_stage
from edgeprune.progress import Reporter, attach_log_file
from edgeprune.rundir import PICK_NAMES, RunDir

log = logging.getLogger("edgeprune")


def state_bytes(model: torch.nn.Module) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


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


def restart_stages(run: RunDir, stages: set[str], reporter: Reporter, why: str) -> None:
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
        restart_stages(run, restart, reporter, f"{what} changed")
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
    inputs = resolve_budget(inputs, probe)
    if resume:
        _reopen(run, cfg, inputs, probe, reporter)
        if run_log is not None:
            run_log.open(run.log)
        return inputs, run
    info: dict[str, Any] = {"target": inputs.profile.name, "latency_probe": probe}
    if cfg.model.weights is None:
        acc = pretrain(inputs, reporter)
        if not inputs.cfg.model.transfer:
            info["pretrain"] = check_trained(inputs, acc)
    run.create(
        {
            run.config.name: cfg.to_yaml().encode(),
            str(run.base_weights.relative_to(run.root)): state_bytes(inputs.loaded.model),
        },
        info,
    )
    if run_log is not None:
        run_log.open(run.log)
    return inputs, run
