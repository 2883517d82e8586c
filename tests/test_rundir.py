"""edgeprune.rundir: the run directory's layout, its one-step creation and the run.json stage record."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgeprune import rundir as rundir_module
from edgeprune.errors import RunDirError
from edgeprune.rundir import PICK_NAMES, STATE_VERSION, RunDir

FILES = {"config.yaml": b"version: 1\n", "base/weights.pt": b"\x80weights"}
PREPARE = {"target": "host-cpu", "probe": {"unpruned_ms": 0.03}}


def _names(d):
    return sorted(p.name for p in d.iterdir())


def test_layout():
    run = RunDir(root=Path("runs/x"))
    rel = {
        name: str(getattr(run, name).relative_to(run.root))
        for name in (
            "config",
            "state",
            "log",
            "search",
            "pareto_csv",
            "pareto_png",
            "report_html",
            "manifest",
        )
    }
    assert rel == {
        "config": "config.yaml", "state": "run.json", "log": "edgeprune.log", "search": "search",
        "pareto_csv": "pareto.csv", "pareto_png": "pareto.png", "report_html": "report.html",
        "manifest": "manifest.json",
    }  # fmt: skip
    assert str(run.base_weights.relative_to(run.root)) == os.path.join("base", "weights.pt")
    assert str(run.pick("knee").relative_to(run.root)) == os.path.join("picks", "knee")
    assert PICK_NAMES == ("accurate", "knee", "fast")


# --- create: the whole directory or none of it ------------------------------------------------------
def test_create_writes_the_files_and_a_run_json_recording_prepare(tmp_path):
    run = RunDir(tmp_path / "runs" / "a")  # runs/ does not exist yet
    run.create(FILES, PREPARE)
    assert _names(run.root) == ["base", "config.yaml", "run.json"]
    assert run.base_weights.read_bytes() == b"\x80weights" and run.config.read_bytes() == b"version: 1\n"
    assert json.loads(run.state.read_text()) == {"version": STATE_VERSION, "done": {"prepare": PREPARE}}
    assert _names(run.root.parent) == ["a"]  # no staging sibling left


def test_create_replaces_an_empty_directory(tmp_path):
    run = RunDir(tmp_path / "out")
    run.root.mkdir()
    run.create(FILES, {})
    assert run.is_done("prepare") and run.done_info("prepare") == {}
    assert _names(tmp_path) == ["out"]


def test_a_failure_while_creating_leaves_nothing(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "out")
    written = []
    real = rundir_module.write_bytes_atomic

    def disk_full_on_the_second(path, data):
        if written:
            raise OSError(28, "No space left on device")
        written.append(path)
        return real(path, data)

    monkeypatch.setattr(rundir_module, "write_bytes_atomic", disk_full_on_the_second)
    with pytest.raises(RunDirError, match=r"^cannot create --out .*out: No space left on device$"):
        run.create(FILES, PREPARE)
    assert len(written) == 1  # one file had been written into the staging directory
    assert list(tmp_path.iterdir()) == []  # ... which is gone, and --out was never made


def test_an_interrupt_while_creating_leaves_nothing_and_propagates(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "out")
    run.root.mkdir()  # an empty --out is kept as it was

    def interrupt(path, text):
        raise KeyboardInterrupt

    monkeypatch.setattr(rundir_module, "write_text_atomic", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run.create(FILES, PREPARE)
    assert _names(tmp_path) == ["out"] and list(run.root.iterdir()) == []


def test_create_refuses_a_non_empty_directory_that_appeared_meanwhile(tmp_path):
    run = RunDir(tmp_path / "out")
    run.root.mkdir()
    (run.root / "someone-elses.txt").write_text("x")
    with pytest.raises(RunDirError, match="cannot create --out"):
        run.create(FILES, PREPARE)
    assert _names(tmp_path) == ["out"] and _names(run.root) == ["someone-elses.txt"]


# --- check_usable ------------------------------------------------------------------------------------
def test_check_usable_accepts_a_new_or_empty_directory(tmp_path):
    RunDir(tmp_path / "new" / "deeper").check_usable(resume=False)
    (tmp_path / "empty").mkdir()
    RunDir(tmp_path / "empty").check_usable(resume=False)
    assert _names(tmp_path) == ["empty"]  # it only reads


@pytest.mark.parametrize(
    ("setup", "resume", "message"),
    [
        ("file", False, "is a file, not a directory"),
        ("foreign", False, "is not empty"),
        ("run", False, "holds a run; add --resume to continue it"),
        ("foreign", True, "nothing to resume in .*: no run.json there"),
        ("missing", True, "nothing to resume"),
        ("parent-file", False, "cannot create --out .*: .*parent is a file, not a directory"),
    ],
)
def test_check_usable_refuses(tmp_path, setup, resume, message):
    root = tmp_path / "out"
    if setup == "file":
        root.write_text("x")
    elif setup == "foreign":
        root.mkdir()
        (root / "notes.txt").write_text("x")
    elif setup == "run":
        RunDir(root).create(FILES, PREPARE)
    elif setup == "parent-file":
        (tmp_path / "parent").write_text("x")
        root = tmp_path / "parent" / "out"
    with pytest.raises(RunDirError, match=message):
        RunDir(root).check_usable(resume=resume)


def test_check_usable_resumes_a_run(tmp_path):
    run = RunDir(tmp_path / "out")
    run.create(FILES, PREPARE)
    run.check_usable(resume=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_check_usable_refuses_a_read_only_parent(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        with pytest.raises(RunDirError, match="is not writable"):
            RunDir(parent / "out").check_usable(resume=False)
    finally:
        parent.chmod(0o700)


# --- run.json ----------------------------------------------------------------------------------------
def test_stage_record_round_trip(tmp_path):
    run = RunDir(tmp_path / "out")
    run.create(FILES, PREPARE)
    run.mark_done("search", {"generations": 6})
    run.mark_done("finalize:knee")
    run.mark_done("finalize:fast", {"acc": 0.97})
    run.mark_done("finalized-elsewhere")  # shares a prefix, not a stage
    again = RunDir(run.root)  # a new process reads the same record
    assert again.is_done("search") and not again.is_done("report")
    assert again.done_info("search") == {"generations": 6} and again.done_info("finalize:knee") == {}
    assert again.done_info("report") == {}
    assert again.finished("finalize") == ["finalize:fast", "finalize:knee"]  # run.json keeps keys sorted
    assert again.finished("search") == ["search"] and again.finished("ship") == []
    again.forget("finalize:knee", "never-done")
    assert run.finished("finalize") == ["finalize:fast"]
    state = json.loads(run.state.read_text())
    assert state["version"] == STATE_VERSION and list(state["done"]) == [
        "finalize:fast", "finalized-elsewhere", "prepare", "search",
    ]  # fmt: skip
    assert _names(run.root) == ["base", "config.yaml", "run.json"]  # rewritten in place, no temporaries


def test_done_info_is_a_copy(tmp_path):
    run = RunDir(tmp_path / "out")
    run.create(FILES, PREPARE)
    info = run.done_info("prepare")
    info["target"] = "changed"
    assert run.done_info("prepare")["target"] == "host-cpu"


def test_a_directory_without_run_json_has_nothing_done(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_state() == {"version": STATE_VERSION, "done": {}}
    assert not run.is_done("prepare") and run.finished("finalize") == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is unreadable"),
        ('{"version": 2, "done": {}}', "is not an edgeprune run record"),
        ('{"version": 1, "done": []}', "is not an edgeprune run record"),
        ("[1, 2]", "is not an edgeprune run record"),
    ],
)
def test_a_damaged_or_foreign_run_json_is_one_line(tmp_path, content, message):
    (tmp_path / "run.json").write_text(content)
    with pytest.raises(RunDirError, match=message) as info:
        RunDir(tmp_path).is_done("prepare")
    assert "\n" not in str(info.value) and "run.json" in str(info.value)
