"""edgeprune.atomic: a failed or killed write leaves the old file whole; what is written is fsync'ed."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgeprune import atomic
from edgeprune.atomic import atomic_output, make_dirs, write_bytes_atomic, write_text_atomic


@pytest.fixture
def fsyncs(monkeypatch):
    """Record what each os.fsync call flushed: ("dir"|"file", inode)."""
    seen: list[tuple[str, int]] = []
    real = os.fsync

    def record(fd):
        st = os.fstat(fd)
        seen.append(("dir" if stat.S_ISDIR(st.st_mode) else "file", st.st_ino))
        return real(fd)

    monkeypatch.setattr(atomic.os, "fsync", record)
    return seen


def _ino(path: Path) -> int:
    return path.stat().st_ino


def test_write_replaces_the_file_and_fsyncs_the_file_and_its_directory(tmp_path, fsyncs):
    path = tmp_path / "run.json"
    path.write_text("old")
    assert write_text_atomic(path, "new ü") == path
    assert path.read_bytes() == "new ü".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
    # the data was flushed under the inode that is now the file, and then the directory holding it
    assert fsyncs == [("file", _ino(path)), ("dir", _ino(tmp_path))]


def test_write_creates_parents_and_makes_each_new_directory_durable(tmp_path, fsyncs):
    path = tmp_path / "a" / "b" / "x.bin"
    write_bytes_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    dirs = [ino for kind, ino in fsyncs if kind == "dir"]
    # tmp_path (holds the new a/), a (holds b/), then b again after the rename
    assert dirs == [_ino(tmp_path), _ino(tmp_path / "a"), _ino(tmp_path / "a" / "b")]
    make_dirs(tmp_path / "a" / "b")  # nothing to create: nothing fsync'ed
    assert len(fsyncs) == 4


@pytest.mark.parametrize("fail_in", ["fsync", "replace"])
def test_a_failure_mid_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, fail_in):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old model")

    def boom(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, fail_in, boom)
    with pytest.raises(OSError, match="No space left"):
        write_bytes_atomic(path, b"new model, only partly written")
    assert path.read_bytes() == b"old model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_an_interrupt_mid_write_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "x.txt"

    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(path, "data")
    assert list(tmp_path.iterdir()) == []


def test_sigkill_mid_write_leaves_the_old_file_whole(tmp_path):
    """A process killed after writing the bytes but before the rename: the file keeps its old
    content; only a hidden temporary is left beside it."""
    path = tmp_path / "checkpoint.json"
    path.write_text('{"generation": 3}')
    child = textwrap.dedent(
        f"""
        import os, sys, time
        from edgeprune import atomic
        def stall(fd):
            print("written", flush=True)
            time.sleep(60)
        atomic.os.fsync = stall
        atomic.write_text_atomic({str(path)!r}, '{{"generation": 4, "population": [' + '1, ' * 100000 + '1]}}')
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "written"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_text() == '{"generation": 3}'
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert (
        len(leftovers) == 1 and leftovers[0].startswith(".checkpoint.json.") and leftovers[0].endswith(".tmp")
    )
    assert (tmp_path / leftovers[0]).stat().st_size > 300_000  # the new bytes were there, never renamed in


# --- atomic_output: a writer that only takes a path -------------------------------------------------
def test_atomic_output_moves_the_written_file_into_place(tmp_path, fsyncs):
    path = tmp_path / "pick" / "model.pt2"
    with atomic_output(path) as tmp:
        assert tmp.name == "model.pt2" and tmp.parent.parent == path.parent  # same name, same file system
        assert tmp.parent.name.startswith(".model.pt2.") and tmp.parent.name.endswith(".tmp")
        assert not tmp.exists() and not path.exists()
        tmp.write_bytes(b"package")
        (tmp.parent / "side-file.log").write_text("a writer's leftovers")
    assert path.read_bytes() == b"package"
    assert [p.name for p in path.parent.iterdir()] == ["model.pt2"]  # the hidden directory is gone
    assert ("file", _ino(path)) in fsyncs and fsyncs[-1] == ("dir", _ino(path.parent))


def test_atomic_output_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "model.int8.onnx"
    path.write_bytes(b"old int8")
    with pytest.raises(RuntimeError, match="quantizer failed"), atomic_output(path) as tmp:
        tmp.write_bytes(b"half a mod")
        raise RuntimeError("quantizer failed")
    assert path.read_bytes() == b"old int8"
    assert [p.name for p in tmp_path.iterdir()] == ["model.int8.onnx"]


def test_atomic_output_refuses_a_writer_that_wrote_nothing(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    with pytest.raises(FileNotFoundError, match="produced no file"), atomic_output(path):
        pass
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
