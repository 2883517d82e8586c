"""The Ray executor gives the same front as the local one (a local Ray instance started by the test)."""

import pytest

ray = pytest.importorskip("ray")


def test_ray_and_local_executors_give_identical_fronts(tmp_path, digits_weights, evaluator):
    from search_helpers import _front, _spec

    from edgeprune.search.run import run_search

    local = run_search(_spec(digits_weights, generations=2), tmp_path / "local", evaluator=evaluator)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_search(_spec(digits_weights, generations=2, executor="ray", workers=2), tmp_path / "ray")
    finally:
        ray.shutdown()
    assert _front(local) == _front(remote) and local.picks == remote.picks
