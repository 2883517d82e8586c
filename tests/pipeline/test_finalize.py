"""The finalize stage: picks that are one network are fine-tuned once; with ``finalize.distill`` the
picks learn from the unpruned network fine-tuned with the same recipe, not from the untuned one, and
that baseline itself is fine-tuned plainly (it is the reference the picks are judged against)."""

import numpy as np
import torch

from edgeprune.config import ModelConfig
from edgeprune.graph import analyze
from edgeprune.models import build_model
from edgeprune.pipeline import stages
from edgeprune.pipeline.config_resolution import resolve_config
from edgeprune.pipeline.prepare import prepare_run
from edgeprune.progress import Reporter
from edgeprune.search.result import Candidate, SearchResult
from edgeprune.space import SearchSpace


def _result(inputs) -> SearchResult:
    """A front of two networks whose accurate and knee picks are the same network."""
    example = torch.zeros(1, *inputs.data.input_shape)
    space = SearchSpace.from_analysis(analyze(inputs.loaded.model, example, 16), 16)
    genomes = space.random(np.random.default_rng(0), 2)
    cands = tuple(
        Candidate(space.decode(g), tuple(int(v) for v in g), {"error": e, "latency_ms": t, "params": 1.0})
        for g, e, t in zip(genomes, (0.1, 0.2), (2.0, 1.0), strict=True)
    )
    picks = {"accurate": 0, "knee": 0, "fast": 1}
    return SearchResult("nsga3", ("error", "latency"), cands, (0, 1), picks, (), 2, "measured")


def test_identical_picks_are_fine_tuned_once_and_distil_from_the_tuned_baseline(
    small_config, tmp_path, monkeypatch
):
    torch.manual_seed(0)
    weights = tmp_path / "digits.pt"
    torch.save(build_model(ModelConfig(name="digits-resnet")).model.state_dict(), weights)
    cfg = resolve_config(small_config, {"model": {"weights": str(weights)}, "finalize": {"distill": True}})
    reporter = Reporter()
    inputs, run = prepare_run(cfg, tmp_path / "run", False, reporter)
    result = _result(inputs)
    teachers: list[dict[str, torch.Tensor] | None] = []
    real = stages.fine_tune

    def spy(model, *args, teacher=None, **kwargs):
        teachers.append(None if teacher is None else {k: v.clone() for k, v in teacher.state_dict().items()})
        return real(model, *args, teacher=teacher, **kwargs)

    monkeypatch.setattr(stages, "fine_tune", spy)
    summary = stages.finalize_stage(inputs, run, result, reporter)
    # baseline, accurate, fast: the knee is the accurate pick's network and is not trained again
    assert len(teachers) == 3
    assert summary["knee"]["same_as"] == "accurate"
    assert summary["knee"]["test_accuracy"] == summary["accurate"]["test_accuracy"]
    assert (
        run.pick("knee").joinpath("weights.pt").read_bytes()
        == run.pick("accurate").joinpath("weights.pt").read_bytes()
    )
    assert (
        run.pick("knee").joinpath("plan.json").read_text()
        == run.pick("accurate").joinpath("plan.json").read_text()
    )
    assert teachers[0] is None  # the baseline learns from the labels alone
    tuned = torch.load(run.root / "finalize" / "baseline" / "weights.pt", weights_only=True)
    untuned = torch.load(run.base_weights, weights_only=True)
    for t in teachers[1:]:  # the picks' teacher is the tuned baseline
        assert t is not None and all(torch.equal(t[k], tuned[k]) for k in tuned)
        assert not all(torch.equal(t[k], untuned[k]) for k in untuned)
    # resuming redoes nothing
    teachers.clear()
    again = stages.finalize_stage(inputs, run, result, reporter)
    assert teachers == [] and again["knee"] == summary["knee"]


def test_finetune_precision_auto_follows_the_cpu(monkeypatch):
    import edgeprune.latency.timing as timing

    assert stages.finetune_bf16("bf16") and not stages.finetune_bf16("fp32")
    monkeypatch.setattr(timing, "cpu_info", lambda: {"isa": ["avx2", "avx512_bf16"]})
    assert stages.finetune_bf16("auto")
    monkeypatch.setattr(timing, "cpu_info", lambda: {"isa": ["avx2", "fma"]})
    assert not stages.finetune_bf16("auto")
