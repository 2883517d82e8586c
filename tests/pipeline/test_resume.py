"""Issue 15: a run that failed anywhere is continued by ``--resume``; which config changes it accepts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml

from edgeprune.cli import main
from edgeprune.errors import RunDirError, UntrainedModelError
from edgeprune.pipeline.prepare import restart_stages, resume_changes
from edgeprune.pipeline.pretrain import chance_accuracy, check_trained, untrained_below
from edgeprune.pipeline_config import RESULT_NEUTRAL, CompileConfig, config_stage
from edgeprune.progress import Reporter
from edgeprune.rundir import RunDir

TINY = {
    "target": "mobile-cpu",  # an estimate: no host-cpu table to measure first
    "search": {"generations": 2, "population": 6, "val_size": 100, "calib_batches": 1, "batch_size": 64},
    "pretrain": {"epochs": 1},
    "finalize": {"epochs": 0, "baseline": False},
    "ship": {"verify_images": 100},
}


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow  # a full compile (CONTRIBUTING: end-to-end runs are the slow tier)
def test_a_run_that_died_in_the_first_generation_resumes(tmp_path, frozen_profiles, monkeypatch, capsys):
    from edgeprune.search.evaluator import Evaluator

    monkeypatch.setenv("EDGEPRUNE_PROFILES_DIR", str(frozen_profiles))
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    args = ["compile", "--quiet", "--config", str(cfg), "--out", str(out)]
    real = Evaluator.evaluate
    calls = []

    def dies_in_the_first_generation(self, plan):
        calls.append(plan.key())
        if len(calls) > 3:
            raise RuntimeError("simulated crash in the first generation")
        return real(self, plan)

    monkeypatch.setattr(Evaluator, "evaluate", dies_in_the_first_generation)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(args)
    monkeypatch.setattr(Evaluator, "evaluate", real)
    state = json.loads((out / "run.json").read_text())
    assert set(state["done"]) == {"prepare"}
    assert (out / "search" / "cache.jsonl").is_file() and not (out / "search" / "checkpoint.json").exists()
    cached_before = (out / "search" / "cache.jsonl").read_text().splitlines()
    assert cached_before  # the unpruned reference was evaluated before the crash

    # a resume that changes what the run is built on is refused in one line, touching nothing
    before = _snapshot(out)
    assert main([*args, "--resume", "--seed", "3"]) == RunDirError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config changed" in err[0] and "search.seed" in err[0]
    assert _snapshot(out) == before

    # a plain --resume goes on (it was refused before: "already holds a search")
    assert main([*args, "--resume"]) == 0, capsys.readouterr().err
    state = json.loads((out / "run.json").read_text())
    assert {"prepare", "search", "finalize:knee", "ship:fast", "report"} <= set(state["done"])
    cached_after = (out / "search" / "cache.jsonl").read_text().splitlines()
    assert cached_after[: len(cached_before)] == cached_before  # the evaluations before the crash are kept
    assert (out / "pareto.csv").is_file() and (out / "picks" / "knee" / "model.onnx").is_file()


# --- which config changes a resume accepts ---------------------------------------------------------
def _run_dir(tmp_path: Path, done: list[str], search_started: bool = False) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.config.write_text(CompileConfig.from_mapping(TINY).to_yaml())
    state = {"version": 1, "done": {stage: {} for stage in ["prepare", *done]}}
    run.state.write_text(json.dumps(state))
    if search_started:
        run.search.mkdir()
        (run.search / "cache.jsonl").write_text('{"key": "k", "plan": "{}", "metrics": {}}\n')
        (run.search / "checkpoint.json").write_text("{}")
    return run


def _changed(**over: dict) -> CompileConfig:
    data = json.loads(json.dumps(TINY))
    for section, fields in over.items():
        data.setdefault(section, {}).update(fields)
    return CompileConfig.from_mapping(data)


@pytest.mark.parametrize(
    ("done", "over", "refused"),
    [
        # fields that never change results: always
        (["search", "finalize:knee", "ship:knee"], {"search": {"workers": 4}}, None),
        (["search", "finalize:knee", "ship:knee"], {"pretrain": {"allow_untrained": True}}, None),
        # the base network and the data splits: never
        ([], {"data": {"seed": 1}}, "base network"),
        ([], {"pretrain": {"epochs": 5}}, "base network"),
        ([], {"model": {"name": "resnet20"}}, "base network"),
        # the search's fields: until the search has finished
        ([], {"search": {"budget_ms": 0.02}}, None),
        ([], {"search": {"generations": 5}}, None),
        (["search"], {"search": {"budget_ms": 0.02}}, "search has finished"),
        (["search"], {"search": {"fast_tolerance": 0.1}}, "search has finished"),
        # fine-tuning: until a pick is fine-tuned; shipping: until a pick is shipped
        (["search"], {"finalize": {"epochs": 2}}, None),
        (["search", "finalize:baseline"], {"finalize": {"epochs": 2}}, "already fine-tuned"),
        (["search", "finalize:fast"], {"ship": {"verify_images": 50}}, None),
        (["search", "finalize:fast", "ship:accurate"], {"ship": {"verify_images": 50}}, "already shipped"),
        # the shipped precision is the search's latency objective: until the search has finished
        ([], {"ship": {"precision": "int8"}}, None),
        (["search"], {"ship": {"precision": "int8"}}, "search has finished"),
    ],
)
def test_resume_accepts_a_change_only_while_its_stage_has_finished_nothing(tmp_path, done, over, refused):
    run = _run_dir(tmp_path, done, search_started=True)
    stored = CompileConfig.from_yaml(run.config)
    if refused is None:
        changed = resume_changes(run, stored, _changed(**over))
        assert all(f not in RESULT_NEUTRAL for f in changed)
    else:
        with pytest.raises(RunDirError, match=f"config changed.*{refused}") as info:
            resume_changes(run, stored, _changed(**over))
        assert "\n" not in str(info.value)


def test_config_stage():
    assert config_stage("search.budget_ms") == "search"
    assert config_stage("finalize.epochs") == "finalize"
    assert config_stage("ship.precision") == "search"  # the search prices the shipped precision
    assert config_stage("ship.verify_images") == "ship"
    for field in ("model.weights", "data.seed", "target", "pretrain.epochs", "version"):
        assert config_stage(field) == "prepare"


def test_an_unfinished_search_restarts_from_scratch(tmp_path):
    """Accepted search changes (or a changed latency table) discard the unfinished search's evaluations:
    the result is then the one a new run with the new value gives."""
    run = _run_dir(tmp_path, [], search_started=True)
    run.pareto_csv.write_text("rank\n")
    restart_stages(run, {"search"}, Reporter(), "search.budget_ms changed")
    assert not run.search.exists() and not run.pareto_csv.exists()
    assert run.is_done("prepare") and run.config.is_file()


def test_an_unfinished_export_keeps_the_fine_tuned_picks(tmp_path):
    run = _run_dir(tmp_path, ["search", "finalize:accurate", "finalize:knee", "finalize:fast"])
    pick = run.pick("knee")
    pick.mkdir(parents=True)
    for name in ("weights.pt", "plan.json", "model.onnx", "model.int8.onnx"):
        (pick / name).write_text("x")
    restart_stages(run, {"ship"}, Reporter(), "ship.precision changed")
    assert sorted(p.name for p in pick.iterdir()) == ["plan.json", "weights.pt"]


# --- training from scratch that ends at chance -----------------------------------------------------
def test_chance_is_the_better_of_uniform_and_majority_guessing():
    assert chance_accuracy(torch.tensor([0, 1, 2, 3]), 4) == 0.25
    assert chance_accuracy(torch.tensor([0, 0, 0, 1]), 4) == 0.75
    assert chance_accuracy(torch.tensor([0, 1]), 10) == 0.5
    # two standard errors of the validation split, at least 2 points
    assert untrained_below(0.1, 160) == pytest.approx(0.1 + 2 * (0.1 * 0.9 / 160) ** 0.5)
    assert untrained_below(0.1, 10**9) == pytest.approx(0.12)


class _Split:
    def __init__(self, y: torch.Tensor) -> None:
        self.y = y

    def __len__(self) -> int:
        return len(self.y)


class _Inputs:
    """What check_trained reads of Inputs."""

    def __init__(self, y: torch.Tensor, allow: bool) -> None:
        self.cfg = CompileConfig.from_mapping(
            {"model": {"name": "torchvision:mobilenet_v3_small"}, "pretrain": {"allow_untrained": allow}}
        )
        self.data = type("Data", (), {"val": _Split(y), "num_classes": 10})()


def test_a_network_at_chance_stops_the_run_unless_allowed():
    y = torch.arange(160) % 10  # the MobileNetV3: 7.5 % on 160 validation images, chance 10 %
    with pytest.raises(
        UntrainedModelError, match=r"reached 7\.5% validation accuracy, no better than chance"
    ) as info:
        check_trained(_Inputs(y, allow=False), 0.075)  # type: ignore[arg-type]
    assert "--allow-untrained" in str(info.value) and "--weights" in str(info.value)
    assert "\n" not in str(info.value)
    assert check_trained(_Inputs(y, allow=True), 0.075)["val_accuracy"] == 0.075  # type: ignore[arg-type]
    assert check_trained(_Inputs(y, allow=False), 0.6)["chance_accuracy"] == 0.1  # type: ignore[arg-type]


# --- the run directory appears in one step ---------------------------------------------------------
def test_the_run_directory_appears_in_one_step(tmp_path, monkeypatch):
    import edgeprune.rundir as rundir_module

    run = RunDir(tmp_path / "a" / "b" / "run")
    run.check_usable(False)
    run.create({"config.yaml": b"c", "base/weights.pt": b"w"}, {"target": "t"})
    assert run.is_done("prepare") and (run.root / "base" / "weights.pt").read_bytes() == b"w"
    assert not list(run.root.parent.glob(".run.creating-*"))
    # an empty directory made beforehand is taken over
    empty = RunDir(tmp_path / "empty")
    empty.root.mkdir()
    empty.check_usable(False)
    empty.create({"config.yaml": b"c"}, {})
    assert empty.is_done("prepare")

    # a failure while writing leaves nothing, not even the staging directory
    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rundir_module, "write_bytes_atomic", disk_full)
    failed = RunDir(tmp_path / "failed")
    with pytest.raises(RunDirError, match="cannot create --out .*No space left on device"):
        failed.create({"config.yaml": b"c"}, {})
    assert not failed.root.exists() and not list(tmp_path.glob(".failed.creating-*"))
