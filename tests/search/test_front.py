import numpy as np
import pytest

from edgeprune.search.front import choose_picks, expected_marginal_utility, hypervolume, non_dominated


def test_non_dominated_and_hypervolume():
    F = np.array([[0.1, 10], [0.12, 5], [0.3, 4.8], [0.5, 1], [0.11, 9], [0.2, 20], [0.12, 5]])
    assert non_dominated(F).tolist() == [0, 1, 2, 3, 4]
    # two points: (0,1) and (1,0) with ref (2,2): area 4 - 1 = 3
    assert hypervolume(np.array([[0.0, 1.0], [1.0, 0.0]]), (2, 2)) == pytest.approx(3.0)
    assert hypervolume(np.array([[3.0, 3.0]]), (2, 2)) == 0.0


def test_picks_accurate_fast_and_an_interior_knee():
    F = np.array([[0.10, 10.0], [0.11, 9.0], [0.12, 5.0], [0.30, 4.8], [0.50, 1.0]])
    p = choose_picks(F[:, 0], F[:, 1], F, fast_tolerance=0.03)
    assert p.accurate == 0
    assert p.fast == 2  # fastest within 3 points of the best error
    assert p.knee == 2  # the sharp bend of the front
    emu = expected_marginal_utility(F)
    assert emu.shape == (5,) and emu[2] > emu[1] and emu[2] > emu[3]


def test_knee_stays_within_its_tolerance_of_the_accurate_pick():
    # the flat search's 2-D front on ResNet-56 (approximate error, predicted latency / unpruned), seed 0:
    # near-linear once normalised, it reaches down to networks near chance accuracy
    F = np.array([[0.072, 1.0], [0.078, 0.959], [0.142, 0.791], [0.172, 0.76], [0.22, 0.747], [0.23, 0.74],
                  [0.288, 0.652], [0.292, 0.618], [0.298, 0.574], [0.308, 0.558], [0.362, 0.535],
                  [0.388, 0.528], [0.43, 0.495], [0.444, 0.454], [0.538, 0.429], [0.61, 0.402],
                  [0.614, 0.395], [0.654, 0.342], [0.658, 0.33], [0.716, 0.319], [0.728, 0.3], [0.758, 0.178],
                  [0.792, 0.145], [0.848, 0.129], [0.856, 0.124]])  # fmt: skip
    anywhere = choose_picks(F[:, 0], F[:, 1], F, fast_tolerance=0.03, knee_tolerance=1.0)
    assert F[anywhere.knee, 0] > 0.5  # what an unbounded knee does on such a front
    p = choose_picks(F[:, 0], F[:, 1], F, fast_tolerance=0.03, knee_tolerance=0.10)
    # the knee is further out than fast_tolerance: fast is no slower than the knee (it was member 1,
    # slower than the knee, before the picks were ordered)
    assert p.knee == 2 and (p.accurate, p.fast) == (0, 2)
    # fewer than three members within the tolerance: the knee is the accurate pick
    assert choose_picks(F[:, 0], F[:, 1], F, fast_tolerance=0.03, knee_tolerance=0.01).knee == 0


def test_picks_are_ordered_by_latency_on_any_front():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 30))
        err, lat = rng.random(n), rng.random(n)
        F = np.column_stack([err, lat, rng.random(n)])  # a third objective: members need not trade off
        p = choose_picks(err, lat, F, fast_tolerance=float(rng.random() * 0.1), knee_tolerance=0.3)
        assert lat[p.fast] <= lat[p.knee] <= lat[p.accurate]
        assert err[p.accurate] == err.min()
        assert err[p.knee] <= err[p.accurate] + 0.3 + 1e-12
