"""Search behaviour on the default job's small model (digits-resnet on scikit-learn digits)."""

import itertools
import os
import signal
import subprocess
import sys
import time

import pytest
from search_helpers import _TARGET, _front, _spec

from edgeprune.errors import SearchError
from edgeprune.search.cache import EvaluationCache
from edgeprune.search.run import run_search


def test_same_seed_same_front_and_cache_hits(tmp_path, digits_weights, evaluator):
    a = run_search(_spec(digits_weights), tmp_path / "a", evaluator=evaluator)
    b = run_search(_spec(digits_weights), tmp_path / "b", evaluator=evaluator)
    assert _front(a) == _front(b) and a.picks == b.picks
    assert a.n_evals > 8  # more than the initial population was explored
    names = set(a.picks)
    assert names == {"accurate", "knee", "fast"}
    errs = [a.candidates[i].metrics["error"] for i in a.front]
    assert a.candidates[a.picks["accurate"]].metrics["error"] == min(errs)
    # the history records every generation with a non-decreasing hypervolume
    hv = [h["hypervolume"] for h in a.history]
    assert len(hv) == 3 and all(x <= y + 1e-12 for x, y in itertools.pairwise(hv))
    cache = EvaluationCache(tmp_path / "a" / "cache.jsonl")
    assert len(cache) == a.n_evals
    c = run_search(_spec(digits_weights, seed=1), tmp_path / "c", evaluator=evaluator)
    assert _front(c) != _front(a)


def test_existing_search_dir_needs_resume(tmp_path, digits_weights, evaluator):
    run_search(_spec(digits_weights, generations=1), tmp_path / "s", evaluator=evaluator)
    with pytest.raises(Exception, match="already holds a search"):
        run_search(_spec(digits_weights, generations=1), tmp_path / "s", evaluator=evaluator)
    with pytest.raises(SearchError, match="different search configuration"):
        run_search(
            _spec(digits_weights, generations=1, seed=5), tmp_path / "s", resume=True, evaluator=evaluator
        )


def test_workers_do_not_change_the_front(tmp_path, digits_weights, evaluator):
    one = run_search(_spec(digits_weights, generations=2), tmp_path / "one", evaluator=evaluator)
    two = run_search(_spec(digits_weights, generations=2, workers=2), tmp_path / "two")
    assert _front(one) == _front(two)


_KILL_SCRIPT = """
import sys
from pathlib import Path
from edgeprune.config import DataConfig, ModelConfig
from edgeprune.search.config import SearchConfig
from edgeprune.search.evaluator import EvaluatorSpec
from edgeprune.search.run import run_search
spec = EvaluatorSpec(ModelConfig(name="digits-resnet", weights=Path(sys.argv[1])), DataConfig(source="digits"), sys.argv[4],
    SearchConfig(generations=4, population=8, val_size=200, calib_batches=2, batch_size=64))
r = run_search(spec, Path(sys.argv[2]), resume=sys.argv[3] == "1")
print([(r.candidates[i].plan.key(), r.candidates[i].metrics["error"]) for i in r.front])
"""


@pytest.mark.slow  # a kill and resume of three search subprocesses (the slow tier)
def test_sigkill_then_resume_gives_the_same_front(tmp_path, digits_weights):
    script = tmp_path / "s.py"
    script.write_text(_KILL_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = subprocess.run(
        [sys.executable, str(script), str(digits_weights), str(tmp_path / "full"), "0", _TARGET[0]],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(digits_weights), str(killed_dir), "0", _TARGET[0]], env=env
    )
    deadline = time.time() + 240
    while time.time() < deadline and not (killed_dir / "checkpoint.json").exists():
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside generation 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (killed_dir / "cache.jsonl").exists()
    import json

    assert json.loads((killed_dir / "checkpoint.json").read_text())["generation"] < 4, (
        "the kill came too late to test resume"
    )
    resumed = subprocess.run(
        [sys.executable, str(script), str(digits_weights), str(killed_dir), "1", _TARGET[0]],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert resumed.stdout == full.stdout


def test_bilevel_runs_and_its_front_is_feasible(tmp_path, digits_weights, evaluator):
    r = run_search(
        _spec(digits_weights, strategy="bilevel", generations=3, lower_population=6),
        tmp_path / "bl",
        evaluator=evaluator,
    )
    assert r.strategy == "bilevel" and len(r.front) >= 1
    assert r.n_evals > 8


def test_budget_constraint_is_respected(tmp_path, digits_weights, evaluator):
    ref = evaluator.evaluate(evaluator_plan_unpruned(evaluator))
    budget = ref["latency_ms"] * 0.8
    r = run_search(_spec(digits_weights, budget_ms=budget), tmp_path / "b", evaluator=evaluator)
    assert all(r.candidates[i].metrics["latency_ms"] <= budget for i in r.front)


def evaluator_plan_unpruned(evaluator):
    from edgeprune.graph import PruningPlan

    return PruningPlan(keep={}, drop_blocks=())


def test_bilevel_stops_within_one_sub_population_of_its_budget(tmp_path, digits_weights, evaluator):
    r = run_search(
        _spec(digits_weights, strategy="bilevel", generations=6, lower_population=6, max_evals=20),
        tmp_path / "bl",
        evaluator=evaluator,
    )
    assert 20 <= r.n_evals < 20 + 8  # population 8: never a whole generation (8 + 8 + 2 x 6) over


def test_short_fine_tune_reads_its_own_training_images(digits_weights):
    from edgeprune.graph import PruningPlan
    from edgeprune.search.evaluator import Evaluator

    ev = Evaluator(_spec(digits_weights, finetune_steps=5))
    assert len(ev.tune) == 5 * 64 > len(ev.calib)  # not capped at the two calibration batches
    plan = PruningPlan(drop_blocks=(ev.analysis.blocks[0].name,))
    tuned = ev.evaluate(plan)
    plain = Evaluator(_spec(digits_weights)).evaluate(plan)
    assert tuned["error"] != plain["error"] and tuned["params"] == plain["params"]
