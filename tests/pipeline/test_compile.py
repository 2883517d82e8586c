"""`edgeprune compile` end to end on the default job (small settings), through the CLI."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from edgeprune.cli import main


def _compile(*args: str) -> int:
    return main(["compile", "--quiet", *args])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, frozen_profiles, small_yaml):
    """One uninterrupted small default job (shared by the tests that only read its run directory)."""
    root = tmp_path_factory.mktemp("run")
    cfg = root / "small.yaml"
    cfg.write_text(small_yaml)
    env = {**os.environ, "EDGEPRUNE_PROFILES_DIR": str(frozen_profiles)}
    out = root / "run"
    subprocess.run(
        [sys.executable, "-m", "edgeprune", "compile", "--quiet", "--config", str(cfg), "--out", str(out)],
        check=True,
        env=env,
    )
    return out, cfg, env


def test_default_job_leaves_a_complete_run_directory(finished_run):
    out, _, _ = finished_run
    for name in ("config.yaml", "run.json", "pareto.csv", "pareto.png", "report.html", "manifest.json", "edgeprune.log",
                 "search/checkpoint.json", "search/cache.jsonl"):  # fmt: skip
        assert (out / name).is_file(), name
    for pick in ("accurate", "knee", "fast"):
        for name in ("model.onnx", "weights.pt", "plan.json", "verify.json", "manifest.json"):
            assert (out / "picks" / pick / name).is_file(), f"{pick}/{name}"
        verify = json.loads((out / "picks" / pick / "verify.json").read_text())
        checks = {c["name"]: c for c in verify["checks"]}
        # parity is judged here; the latency ratio is timing (noisy on a shared machine): present, not judged
        assert checks["fp32_max_abs_logit_diff"]["passed"] and checks["fp32_top1_agreement"]["passed"]
        assert "latency_ratio" in checks and verify["latency"]["median_ms"] > 0
    rows = (out / "pareto.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:7] == ["rank", "genome", "error", "params", "macs", "latency_ms", "latency_source"]
    assert sum(r.count(",1,") > 0 for r in rows[1:]) >= 1
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "latency measured" in html and "sortable" in html
    manifest = json.loads((out / "manifest.json").read_text())
    assert "picks/knee/model.onnx" in manifest["files"]


def test_existing_run_needs_resume_and_same_config(finished_run, tmp_path, monkeypatch, capsys):
    out, cfg, env = finished_run
    monkeypatch.setenv("EDGEPRUNE_PROFILES_DIR", env["EDGEPRUNE_PROFILES_DIR"])
    assert _compile("--config", str(cfg), "--out", str(out)) != 0
    assert "add --resume" in capsys.readouterr().err
    assert _compile("--config", str(cfg), "--out", str(out), "--resume", "--seed", "3") != 0
    err = capsys.readouterr().err
    assert "config changed" in err and "search.seed" in err
    # resuming a finished run redoes nothing and keeps the front
    before = (out / "pareto.csv").read_text()
    assert _compile("--config", str(cfg), "--out", str(out), "--resume") == 0
    assert (out / "pareto.csv").read_text() == before


def _kill_when(path_check, proc: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline and proc.poll() is None and not path_check():
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("when", ["search", "finalize"])
def test_sigkill_then_resume_gives_identical_pareto_csv(finished_run, tmp_path, when):
    ref, cfg, env = finished_run
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgeprune", "compile", "--quiet", "--config", str(cfg), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env)
    if when == "search":
        _kill_when(lambda: (out / "search" / "checkpoint.json").exists(), proc)
    else:
        _kill_when(
            lambda: (out / "run.json").exists() and "finalize:baseline" in (out / "run.json").read_text(),
            proc,
        )
    subprocess.run([*cmd, "--resume"], check=True, env=env)
    assert (out / "pareto.csv").read_text() == (ref / "pareto.csv").read_text()
    for pick in ("accurate", "knee", "fast"):
        assert (out / "picks" / pick / "plan.json").read_text() == (
            ref / "picks" / pick / "plan.json"
        ).read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "no-such-device"], "unknown target"),
        (["resnet20", "--data", "/nonexistent/data"], "data not found"),
        (["--budget-ms", "0.000001"], "impossible"),
        (["resnet20", "--data", "digits", "--weights", "/nonexistent.th"], "weights file not found"),
        (["resnet20"], "--data is required"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_run_dir(small_config, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code = _compile("--config", str(small_config), "--out", str(out), *args)
    err = capsys.readouterr().err
    assert code != 0
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (
        not out.exists()
        or not (out / "run.json").exists()
        or "search" not in json.loads((out / "run.json").read_text())["done"]
    )


def test_out_that_is_a_file_is_refused(small_config, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert _compile("--config", str(small_config), "--out", str(f)) != 0
    assert "is a file" in capsys.readouterr().err


def test_dry_run_prints_space_and_estimate(small_config, tmp_path, capsys):
    assert _compile("--config", str(small_config), "--out", str(tmp_path / "o"), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "genomes:" in out and "search time estimate" in out and not (tmp_path / "o").exists()


def test_picks_flag_names_what_is_fine_tuned(small_config, tmp_path, capsys):
    assert _compile("--config", str(small_config), "--picks", "fast,knee", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "picks:\n  - knee\n  - fast\n" in out  # one of each, in the run directory's order
    assert _compile("--config", str(small_config), "--picks", "knee,best", "--out", str(tmp_path / "o")) != 0
    err = capsys.readouterr().err
    assert "finalize.picks" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_ensemble_of_front_members(finished_run, monkeypatch, capsys):
    out, _, env = finished_run
    monkeypatch.setenv("EDGEPRUNE_PROFILES_DIR", env["EDGEPRUNE_PROFILES_DIR"])
    rc = main(["ensemble", str(out), "--size", "2", "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["size"] == 2 and len(result["members"]) == 2
    # the exit code follows the verdict; the verdict's latency ratio is timing (noisy on a shared machine)
    assert rc == (0 if result["verified"] else 10)
    verify = json.loads((out / "ensemble" / "verify.json").read_text())
    parity = {c["name"]: c["value"] for c in verify["checks"]}
    assert parity["fp32_max_abs_logit_diff"] <= 1e-4 and parity["fp32_top1_agreement"] == 1.0
    assert (out / "ensemble" / "model.onnx").is_file()
    n_front = len((out / "pareto.csv").read_text().splitlines()) - 1
    assert main(["ensemble", str(out), "--size", str(n_front + 1)]) != 0
    err = capsys.readouterr().err
    assert "larger than the front" in err and len(err.strip().splitlines()) == 1
    assert main(["ensemble", str(out.parent / "nope"), "--size", "2"]) != 0
    assert "not an edgeprune run directory" in capsys.readouterr().err


@pytest.mark.slow  # a full compile (CONTRIBUTING: end-to-end runs are the slow tier)
def test_rank_genes_job_ships_factorised_picks(tmp_path, small_config, capsys):
    """--rank-genes end to end: factorised networks on the front, shipped picks verified on ONNX Runtime."""
    import csv

    from edgeprune.graph import PruningPlan

    out = tmp_path / "run"
    assert (
        _compile("--config", str(small_config), "--out", str(out), "--rank-genes", "--generations", "3") == 0
    )
    with (out / "pareto.csv").open() as f:
        plans = [PruningPlan.from_json(r["plan"]) for r in csv.DictReader(f)]
    cache = [json.loads(line) for line in (out / "search" / "cache.jsonl").read_text().splitlines()]
    assert any(PruningPlan.from_json(c["plan"]).ranks for c in cache)  # factorised candidates were evaluated
    for pick in ("accurate", "knee", "fast"):
        verify = json.loads((out / "picks" / pick / "verify.json").read_text())
        checks = {c["name"]: c for c in verify["checks"]}
        assert checks["fp32_max_abs_logit_diff"]["passed"] and checks["fp32_top1_agreement"]["passed"]
    assert plans
