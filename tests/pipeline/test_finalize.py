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


def test_native_bf16_follows_the_cpu_flags(monkeypatch):
    import edgeprune.latency.timing as timing

    monkeypatch.setattr(timing, "cpu_info", lambda: {"isa": ["avx2", "avx512_bf16"]})
    assert stages.native_bf16()
    monkeypatch.setattr(timing, "cpu_info", lambda: {"isa": ["avx2", "fma"]})
    assert not stages.native_bf16()


def _inputs(small_config, tmp_path, precision):
    cfg = resolve_config(small_config, {"finalize": {"precision": precision}})
    return prepare_run(cfg, tmp_path / f"run-{precision}", False, Reporter())


def test_finetune_precision_auto_is_measured_once_per_run(small_config, tmp_path, monkeypatch):
    """``auto`` on a CPU with bfloat16: a training step is timed in both precisions on this network and
    the choice is kept in run.json (a resumed run trains alike); without bfloat16 nothing is timed."""
    import edgeprune.latency.timing as timing
    import edgeprune.train.precision as precision

    inputs, run = _inputs(small_config, tmp_path, "bf16")
    model = stages.base_network(inputs, run)
    assert stages.finetune_bf16(inputs, run, model, None, Reporter())
    inputs, run = _inputs(small_config, tmp_path, "fp32")
    assert not stages.finetune_bf16(inputs, run, model, None, Reporter())

    real_cpu = timing.cpu_info()
    inputs, run = _inputs(small_config, tmp_path, "auto")
    native_inputs, native_run = _inputs(small_config, tmp_path / "native", "auto")
    monkeypatch.setattr(timing, "cpu_info", lambda: {**real_cpu, "isa": ["avx2"]})
    assert not stages.finetune_bf16(inputs, run, model, None, Reporter())
    assert run.done_info(stages.FINETUNE_PRECISION) == {
        "bf16": False,
        "why": "no native bfloat16 on this CPU",
    }

    monkeypatch.setattr(timing, "cpu_info", lambda: {**real_cpu, "isa": ["avx2", "avx512_bf16"]})
    inputs, run = native_inputs, native_run
    before = {k: v.clone() for k, v in model.state_dict().items()}
    chosen = stages.finetune_bf16(inputs, run, model, model, Reporter())  # timed for real, with a teacher
    record = run.done_info(stages.FINETUNE_PRECISION)
    assert record["fp32_step_ms"] > 0 and record["bf16_step_ms"] > 0 and record["bf16"] is chosen
    assert chosen == (record["fp32_step_ms"] / record["bf16_step_ms"] >= precision.MIN_BF16_SPEEDUP)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # timed on copies

    def no_timing(*args, **kwargs):
        raise AssertionError("timed again")

    monkeypatch.setattr(precision, "time_training_step", no_timing)
    assert stages.finetune_bf16(inputs, run, model, None, Reporter()) is chosen


def test_bf16_is_chosen_only_when_clearly_faster():
    from edgeprune.train.precision import StepTiming

    assert StepTiming(fp32_ms=780.0, bf16_ms=470.0).use_bf16  # the AMD EPYC measurement
    assert not StepTiming(fp32_ms=750.0, bf16_ms=900.0).use_bf16  # the Intel Xeon one
    assert not StepTiming(fp32_ms=100.0, bf16_ms=95.0).use_bf16  # 5 %: not worth bfloat16's rounding


def test_only_the_named_picks_are_fine_tuned_and_a_resumed_run_may_add_one(
    small_config, tmp_path, monkeypatch
):
    """``finalize.picks``: only the knee (and the baseline) is fine-tuned; resuming with all three adds the
    fast pick and shares the knee's weights with the accurate pick (the same network) instead of training
    it again."""
    weights = tmp_path / "digits.pt"
    torch.save(build_model(ModelConfig(name="digits-resnet")).model.state_dict(), weights)
    trained: list[int] = []
    real = stages.fine_tune

    def spy(model, *args, **kwargs):
        trained.append(sum(p.numel() for p in model.parameters()))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(stages, "fine_tune", spy)
    over = {"model": {"weights": str(weights)}}
    cfg = resolve_config(small_config, {**over, "finalize": {"picks": ["knee"]}})
    inputs, run = prepare_run(cfg, tmp_path / "run", False, Reporter())
    result = _result(inputs)
    summary = stages.finalize_stage(inputs, run, result, Reporter())
    assert len(trained) == 2 and set(summary) == {"baseline", "knee", "original"}
    assert not run.pick("accurate").exists() and not run.pick("fast").exists()

    trained.clear()
    cfg = resolve_config(small_config, {**over, "finalize": {"picks": ["fast", "accurate", "knee"]}})
    inputs, run = prepare_run(cfg, tmp_path / "run", True, Reporter())  # --resume accepts the change
    summary = stages.finalize_stage(inputs, run, result, Reporter())
    assert len(trained) == 1  # the fast pick only
    assert summary["accurate"]["same_as"] == "knee" and "same_as" not in summary["knee"]
    assert (
        run.pick("accurate").joinpath("weights.pt").read_bytes()
        == run.pick("knee").joinpath("weights.pt").read_bytes()
    )
