"""Configs: the YAML round trip, one-line errors, and a document of an unknown version refused."""

from __future__ import annotations

import pytest
import yaml

from edgeprune.cli import main
from edgeprune.config import ModelConfig
from edgeprune.errors import ConfigError
from edgeprune.export.int8 import CalibrationRecipe
from edgeprune.pipeline_config import CompileConfig


def _yaml(tmp_path, data, name="config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_resolved_config_round_trips(tmp_path):
    cfg = CompileConfig.from_mapping({"target": "jetson-orin", "ship": {"dynamic_batch": True}})
    again = CompileConfig.from_yaml(_yaml(tmp_path, yaml.safe_load(cfg.to_yaml())))
    assert again == cfg and again.ship.dynamic_batch and again.version == 1
    written = yaml.safe_load(cfg.to_yaml())
    assert next(iter(written)) == "version" and written["ship"] == {
        "precision": "auto", "dynamic_batch": True, "verify_images": 1000,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (2, "field 'version': version 2 is newer than this edgeprune reads (1): upgrade edgeprune"),
        (0, "field 'version': version 0 is unknown: this edgeprune reads version 1"),
    ],
)
def test_a_config_of_another_version_is_refused_in_one_line(tmp_path, version, message):
    path = _yaml(tmp_path, {"version": version, "target": "host-cpu"})
    with pytest.raises(ConfigError) as info:
        CompileConfig.from_yaml(path)
    assert str(info.value) == f"{path}: {message}"


def test_compile_refuses_a_newer_config_before_writing_anything(tmp_path, capsys):
    path = _yaml(tmp_path, {**CompileConfig().to_dict(), "version": 3})
    out = tmp_path / "run"
    code = main(["compile", "--config", str(path), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err.endswith(
        f"{path}: field 'version': version 3 is newer than this edgeprune reads (1): upgrade edgeprune"
    )
    assert not out.exists()


def test_every_versioned_config_checks_its_version(tmp_path):
    (tmp_path / "host-cpu.yaml").write_text("version: 2\nmethod: minmax\n")
    with pytest.raises(
        ConfigError, match=r"field 'version': version 2 is newer than this edgeprune reads \(1\)"
    ):
        CalibrationRecipe.from_yaml(tmp_path / "host-cpu.yaml")
    assert CalibrationRecipe.from_mapping({"version": 1}).version == 1


def test_a_legacy_config_with_ship_opset_17_still_loads(tmp_path):
    """config.yaml of earlier runs holds ``ship.opset: 17`` (never used): such a run still resumes."""
    legacy = CompileConfig().to_dict()
    legacy["ship"] = {"precision": "auto", "opset": 17, "dynamic_batch": False, "verify_images": 1000}
    assert CompileConfig.from_yaml(_yaml(tmp_path, legacy)) == CompileConfig()
    legacy["ship"]["opset"] = 18  # a value it would have ignored silently is refused
    with pytest.raises(ConfigError, match=r"field 'ship.opset': Extra inputs are not permitted"):
        CompileConfig.from_yaml(_yaml(tmp_path, legacy, "other.yaml"))


def test_validator_messages_are_the_validators_words():
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_mapping({"name": "  "}, where="--model")
    assert str(info.value) == "--model: field 'name': model name is empty"
    with pytest.raises(ConfigError, match=r"^config: field 'search.population': "):
        CompileConfig.from_mapping({"search": {"population": "many"}})
