"""The search stage reports each generation from the record the search has just made in memory: the
figures of ``search/checkpoint.json``'s history, without reading the file back."""

import json
from pathlib import Path

import torch

from edgeprune.config import ModelConfig
from edgeprune.models import build_model
from edgeprune.pipeline.config_resolution import resolve_config
from edgeprune.pipeline.prepare import prepare_run
from edgeprune.pipeline.stages import search_stage
from edgeprune.progress import Reporter


class Recording(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def generation(
        self, gen: int, total: int, n_evals: int, best_error: float, min_latency_ms: float
    ) -> None:
        super().generation(gen, total, n_evals, best_error, min_latency_ms)
        self.events.append((gen, total, n_evals, best_error, min_latency_ms))


def test_each_generation_is_reported_with_its_record(small_config, tmp_path, monkeypatch):
    torch.manual_seed(0)  # any weights do: this is about the reporting, not the network (no pretraining)
    weights = tmp_path / "digits.pt"
    torch.save(build_model(ModelConfig(name="digits-resnet")).model.state_dict(), weights)
    cfg = resolve_config(
        small_config, {"model": {"weights": str(weights)}, "search": {"generations": 3, "population": 6}}
    )
    reporter = Recording()
    inputs, run = prepare_run(cfg, tmp_path / "run", False, reporter)
    reads: list[Path] = []
    read_text = Path.read_text

    def spy(self: Path, *args, **kwargs) -> str:
        if self.name == "checkpoint.json":
            reads.append(self)
        return read_text(self, *args, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(Path, "read_text", spy)
        search_stage(inputs, run, False, reporter)
    assert reads == []
    history = json.loads((run.search / "checkpoint.json").read_text())["history"]
    expected = [(h["generation"], 3, h["n_evals"], h["best_error"], h["min_latency_ms"]) for h in history]
    assert reporter.events == expected and [e[0] for e in expected] == [1, 2, 3]
    assert reporter.events[0][2] < reporter.events[-1][2]  # evaluations accumulate
