"""edgeprune.progress: what each reporter prints (rich, JSON lines, nothing) and what reaches the log."""

from __future__ import annotations

import io
import json
import logging

import pytest
from rich.console import Console

from edgeprune import progress
from edgeprune.progress import JsonReporter, Reporter, RichReporter, attach_log_file


@pytest.fixture
def logged(caplog):
    caplog.set_level(logging.INFO, logger="edgeprune")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "edgeprune"]


def _drive(reporter: Reporter) -> None:
    reporter.stage("search", "NSGA-III on host-cpu")
    reporter.info("12 kernels measured")
    reporter.search_started(5)
    reporter.evaluated(10)
    reporter.generation(3, 5, 30, 0.0345, 0.0284)
    reporter.search_finished()
    reporter.result({"picks": 3, "front": 7})


LOG = [
    "stage search NSGA-III on host-cpu",
    "12 kernels measured",
    "search: 5 generations",
    "generation 3/5 evals=30 best_error=0.0345 min_latency_ms=0.0284",
    'result {"front": 7, "picks": 3}',
]


def test_quiet_reporter_prints_nothing_and_logs_everything(capsys, logged):
    _drive(Reporter())
    update = Reporter().progress("measuring kernels")
    for done in range(4):
        update(done, 3, None)
    assert capsys.readouterr() == ("", "")
    assert logged() == [*LOG, "measuring kernels 0/3", "measuring kernels 3/3"]  # only start and end


def test_json_reporter_writes_one_object_per_line(capsys, logged, monkeypatch):
    monkeypatch.setattr(progress.time, "time", lambda: 1700000000.12345)
    _drive(JsonReporter())
    lines = capsys.readouterr().out.splitlines()
    events = [json.loads(line) for line in lines]
    assert events == [
        {"event": "stage", "stage": "search", "detail": "NSGA-III on host-cpu", "time": 1700000000.123},
        {"event": "info", "message": "12 kernels measured", "time": 1700000000.123},
        {
            "event": "generation", "generation": 3, "total": 5, "n_evals": 30, "best_error": 0.0345,
            "min_latency_ms": 0.0284, "time": 1700000000.123,
        },
        {"event": "result", "picks": 3, "front": 7, "time": 1700000000.123},
    ]  # fmt: skip
    assert all(list(json.loads(line)) == sorted(json.loads(line)) for line in lines)  # stable key order
    assert logged() == LOG  # the log gets the same as under --quiet


def test_json_progress_is_throttled_to_one_a_second_and_the_last(capsys, monkeypatch):
    clock = iter([100.0, 100.4, 100.9, 101.1, 101.2, 101.3])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    update = JsonReporter().progress("measuring kernels")
    for done in range(6):
        update(done, 5, f"kernel {done}")
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e["label"], e["done"], e["total"]) for e in events] == [
        ("progress", "measuring kernels", 0, 5),  # 100.0: the first
        ("progress", "measuring kernels", 3, 5),  # 101.1: a second after the last one emitted
        ("progress", "measuring kernels", 5, 5),  # 101.3: the last, whenever it comes
    ]


def _rich() -> RichReporter:
    reporter = RichReporter()
    reporter.console = Console(record=True, width=120, file=io.StringIO())
    return reporter


def test_rich_reporter_prints_stages_and_the_search_bar(logged):
    reporter = _rich()
    _drive(reporter)
    lines = reporter.console.export_text().splitlines()
    assert lines[:2] == ["search NSGA-III on host-cpu", "  12 kernels measured"]
    bar = lines[2]
    assert bar.startswith("  generation 3/5 ")
    assert "evals 30  best error 3.45%  fastest 0.028 ms" in bar and "eta" in bar
    assert len(lines) == 3  # result() prints nothing: the CLI prints the result itself
    assert logged() == LOG
    assert reporter._progress is None  # search_finished closed the bar


def test_rich_reporter_counts_evaluations_between_generations():
    reporter = _rich()
    reporter.evaluated(4)  # before the search started: counted, nothing shown
    reporter.search_started(2)
    reporter.evaluated(6)
    reporter.evaluated(5)
    reporter.search_finished()
    reporter.search_finished()  # a second close is harmless
    (bar,) = reporter.console.export_text().splitlines()
    assert bar.startswith("  generation 0/2 ") and bar.rstrip().endswith("evals 15 0:00:00 eta -:--:--")


def test_rich_progress_bar_closes_at_the_total():
    reporter = _rich()
    update = reporter.progress("measuring kernels")
    for done in range(4):
        update(done, 3, None)
    (line,) = reporter.console.export_text().splitlines()
    assert line.startswith("  measuring kernels ") and " 3/3 eta 0:00:00" in line


def test_log_file_appends_across_runs(tmp_path):
    path = tmp_path / "edgeprune.log"
    logger = logging.getLogger("edgeprune")
    level = logger.level
    for message in ("first run", "resumed run"):
        handler = attach_log_file(str(path))
        try:
            Reporter().stage("search", message)
        finally:
            logger.removeHandler(handler)
            handler.close()
            logger.setLevel(level)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [line.split(" INFO ", 1)[1] for line in lines] == [
        "stage search first run",
        "stage search resumed run",
    ]
    assert all(line[:4].isdigit() for line in lines)  # each line starts with its time
