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
