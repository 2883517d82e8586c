"""``search.max_evals`` holds for every strategy: at most that many distinct networks are evaluated."""

import json
import shutil

from search_helpers import _front, _spec

from edgeprune.search.cache import EvaluationCache
from edgeprune.search.run import run_search


def _keys(result) -> list[str]:
    return [c.plan.key() for c in result.candidates]


def test_nsga3_stops_at_max_evals_mid_generation(tmp_path, digits_weights, evaluator):
    free = run_search(_spec(digits_weights), tmp_path / "free", evaluator=evaluator)
    assert free.n_evals > 16  # population 8, 3 generations: a budget of 13 ends inside generation 2
    capped = run_search(_spec(digits_weights, max_evals=13), tmp_path / "capped", evaluator=evaluator)
    assert capped.n_evals == 13 == len(EvaluationCache(tmp_path / "capped" / "cache.jsonl"))
    assert capped.history[-1]["n_evals"] == 13 and len(capped.history) == 2
    # the same search stopped early: its evaluations are the first 13 of the unbudgeted run's
    assert _keys(capped) == _keys(free)[:13]
    ckpt = json.loads((tmp_path / "capped" / "checkpoint.json").read_text())
    assert (ckpt["generation"], ckpt["n_evals"]) == (2, 13)


def test_a_budget_not_reached_changes_nothing(tmp_path, digits_weights, evaluator):
    free = run_search(_spec(digits_weights, generations=2), tmp_path / "free", evaluator=evaluator)
    loose = run_search(
        _spec(digits_weights, generations=2, max_evals=free.n_evals + 50),
        tmp_path / "loose",
        evaluator=evaluator,
    )
    exact = run_search(
        _spec(digits_weights, generations=2, max_evals=free.n_evals), tmp_path / "exact", evaluator=evaluator
    )
    for r in (loose, exact):
        assert _front(r) == _front(free) and r.picks == free.picks and _keys(r) == _keys(free)
        assert r.history == free.history


def test_a_budgeted_search_resumes_to_the_same_cut(tmp_path, digits_weights, evaluator):
    spec = _spec(digits_weights, max_evals=13)
    done = run_search(spec, tmp_path / "done", evaluator=evaluator)
    fresh: list[int] = []
    # resuming a finished run replays to the cut generation's checkpoint without evaluating anything
    again = run_search(spec, tmp_path / "done", resume=True, evaluator=evaluator, on_evaluated=fresh.append)
    assert sum(fresh) == 0 and _front(again) == _front(done) and again.history == done.history
    # a run killed inside generation 2 (cache of 10 evaluations, no checkpoint yet) finishes at 13
    killed = tmp_path / "killed"
    killed.mkdir()
    lines = (tmp_path / "done" / "cache.jsonl").read_text().splitlines(keepends=True)
    (killed / "cache.jsonl").write_text("".join(lines[:10]))
    resumed = run_search(spec, killed, resume=True, evaluator=evaluator, on_evaluated=fresh.append)
    assert sum(fresh) == 3 and resumed.n_evals == 13
    assert _keys(resumed) == _keys(done) and _front(resumed) == _front(done)
    shutil.rmtree(killed)


def test_the_unpruned_reference_alone_is_a_budget_of_one(tmp_path, digits_weights, evaluator):
    r = run_search(_spec(digits_weights, max_evals=1), tmp_path / "one", evaluator=evaluator)
    assert r.n_evals == 1 and len(r.front) == 1 and r.history[-1]["n_evals"] == 1


def test_bilevel_stops_exactly_at_max_evals(tmp_path, digits_weights, evaluator):
    r = run_search(
        _spec(digits_weights, strategy="bilevel", generations=4, lower_population=6, max_evals=19),
        tmp_path / "bl",
        evaluator=evaluator,
    )
    assert r.n_evals == 19 and r.history[-1]["n_evals"] == 19
