"""Issue 15, kills anywhere: SIGKILL at a random point of every stage, then the same command again
(``--resume`` once the run directory exists), gives the same front, plans and test accuracies as an
uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

PICKS = ("accurate", "knee", "fast")


def _done(out: Path) -> dict:
    try:
        return json.loads((out / "run.json").read_text())["done"]
    except (OSError, ValueError, KeyError):
        return {}


# when each stage is under way (the kill then waits a random extra delay)
STAGES: dict[str, Callable[[Path], bool]] = {
    "prepare": lambda out: True,  # loading, checks, training from scratch: no directory yet
    "search": lambda out: (out / "search" / "cache.jsonl").exists(),
    "finalize": lambda out: "search" in _done(out),
    "ship": lambda out: "finalize:fast" in _done(out),
    "report": lambda out: "ship:fast" in _done(out),
}
DELAY_S = {
    "prepare": (0.5, 6.0),
    "search": (0.0, 3.0),
    "finalize": (0.0, 2.0),
    "ship": (0.0, 1.0),
    "report": (0.0, 0.3),
}


def _outcome(out: Path) -> dict:
    done = _done(out)
    return {
        "pareto": (out / "pareto.csv").read_text(),
        "plans": {p: (out / "picks" / p / "plan.json").read_text() for p in PICKS},
        "test_accuracy": {k: v["test_accuracy"] for k, v in done.items() if k.startswith("finalize:")},
        "stages": sorted(done),
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory, frozen_profiles, small_yaml):
    root = tmp_path_factory.mktemp("reference")
    cfg = root / "small.yaml"
    cfg.write_text(small_yaml)
    env = {**os.environ, "EDGEPRUNE_PROFILES_DIR": str(frozen_profiles)}
    out = root / "run"
    cmd = [sys.executable, "-m", "edgeprune", "compile", "--quiet", "--config", str(cfg), "--out", str(out)]
    subprocess.run(cmd, check=True, env=env, timeout=900)
    return _outcome(out), cfg, env


KILLS_PER_STAGE = 4  # 5 stages x 4 = 20 kills at random points


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(KILLS_PER_STAGE))
@pytest.mark.parametrize("stage", list(STAGES))
def test_sigkill_anywhere_then_resume_gives_the_same_run(reference, tmp_path, stage, attempt):
    expected, cfg, env = reference
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgeprune", "compile", "--quiet", "--config", str(cfg), "--out", str(out)]
    rng = random.Random(f"{stage}-{attempt}-{os.getpid()}")
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 600
    while proc.poll() is None and not STAGES[stage](out) and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(*DELAY_S[stage]))
    if proc.poll() is not None:
        pytest.skip(f"the run finished before the kill in {stage} (a loaded machine's timing)")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if (out / "run.json").exists():
        retry = [*cmd, "--resume"]
    else:  # killed before the run directory existed: it is not there, the same command starts again
        assert not out.exists()
        retry = cmd
    subprocess.run(retry, check=True, env=env, timeout=900)
    assert _outcome(out) == expected
