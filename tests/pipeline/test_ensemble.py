"""`edgeprune.pipeline.ensemble` without a run: the front it reads, the candidate pool, the robustness
split, and the refusals that come before any work (the ensembles themselves: test_compile.py and
test_ensemble_transfer.py)."""

import csv

import pytest
import torch

from edgeprune.data import Split
from edgeprune.data.corruptions import CORRUPTIONS
from edgeprune.errors import ConfigError, RunDirError
from edgeprune.graph import PruningPlan
from edgeprune.pipeline.ensemble import _robust_split, candidate_pool, ensemble_run, read_front
from edgeprune.pipeline_config import CompileConfig
from edgeprune.rundir import RunDir

PLANS = [
    PruningPlan(),
    PruningPlan(keep={"layer3.1.conv1": 16}, channel_multiple=16),
    PruningPlan(drop_blocks=("layer2.0",)),
]


def _fake_run(root, errors=(0.02, 0.05, 0.3)) -> RunDir:
    root.mkdir()
    (root / "config.yaml").write_text(CompileConfig().to_yaml())
    with (root / "pareto.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["rank", "error", "plan"])
        w.writeheader()
        for rank, (plan, err) in enumerate(zip(PLANS, errors, strict=True)):
            w.writerow({"rank": rank, "error": f"{err:.6f}", "plan": plan.to_json()})
    return RunDir(root)


def test_read_front(tmp_path):
    run = _fake_run(tmp_path / "run")
    front = read_front(run)
    assert [(p.key(), e) for p, e in front] == [
        (p.key(), e) for p, e in zip(PLANS, (0.02, 0.05, 0.3), strict=True)
    ]
    (run.root / "pareto.csv").unlink()
    with pytest.raises(RunDirError, match="no pareto.csv"):
        read_front(run)


@pytest.mark.parametrize(
    ("errors", "size", "tolerance", "pool"),
    [
        ([0.10, 0.02, 0.05, 0.30], 2, 0.05, [1, 2]),  # within 0.05 of the best (0.02), in error order
        ([0.10, 0.02, 0.05, 0.30], 2, 0.08, [1, 2, 0]),
        ([0.10, 0.02, 0.05, 0.30], 3, 0.05, [1, 2, 0]),  # too few qualify: the 3 most accurate
        ([0.10, 0.02, 0.05, 0.30], 4, 0.0, [1, 2, 0, 3]),
        ([0.20, 0.20], 2, 0.0, [0, 1]),
    ],
)
def test_candidate_pool(errors, size, tolerance, pool):
    assert candidate_pool(errors, size, tolerance) == pool


def test_robust_split_labels_follow_their_images():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, 8, 8, generator=gen)
    test = Split(x, torch.tensor([4, 3, 2, 1, 0]))
    robust = _robust_split(test, (0.5,) * 3, (0.25,) * 3, n=4, severity=3, seed=1)
    k = len(CORRUPTIONS)
    assert robust.x.shape == (4 * k, 3, 8, 8) and robust.y.tolist() == [4, 3, 2, 1] * k
    assert not torch.allclose(robust.x, x[:4].repeat(k, 1, 1, 1))  # corrupted, not copies
    for j in range(k):  # each corrupted image is nearest to the clean image its label belongs to
        block = robust.x[j * 4 : (j + 1) * 4]
        nearest = torch.cdist(block.flatten(1), x[:4].flatten(1)).argmin(1)
        assert nearest.tolist() == [0, 1, 2, 3], CORRUPTIONS[j]


def test_refusals_come_before_any_work(tmp_path):
    with pytest.raises(RunDirError, match="not an edgeprune run directory"):
        ensemble_run(tmp_path / "nope", 2)
    run = _fake_run(tmp_path / "run")
    with pytest.raises(ConfigError, match="at least 2 members"):
        ensemble_run(run.root, 1)
    with pytest.raises(ConfigError, match=r"larger than the front \(3 members\)"):
        ensemble_run(run.root, 4)
