"""The one generic registry (edgeprune.registry) and the registries built on it."""

from __future__ import annotations

import sys
import textwrap

import pytest

from edgeprune.errors import ConfigError
from edgeprune.registry import Registry


def test_register_get_and_names_sorted() -> None:
    reg: Registry[int] = Registry("widget", error=ConfigError)
    assert reg.register("b", 2) == 2

    @reg.register("a")
    def one() -> int:
        return 1

    assert reg.names() == ["a", "b"]
    assert reg.get("b") == 2
    assert reg.get("a") is one
    assert "a" in reg and "c" not in reg
    assert [name for name, _ in reg.items()] == ["a", "b"]


def test_duplicate_refused() -> None:
    reg: Registry[int] = Registry("widget", error=ConfigError)
    reg.register("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.register("a", 2)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(3)
    assert reg.get("a") == 1


def test_blank_name_refused() -> None:
    reg: Registry[int] = Registry("widget", error=ConfigError)
    with pytest.raises(ValueError, match="non-empty"):
        reg.register("", 1)
    with pytest.raises(ValueError, match="surrounding spaces"):
        reg.register(" a", 1)


def test_unknown_name_raises_the_given_error_naming_known_ones() -> None:
    reg: Registry[int] = Registry("widget", error=ConfigError)
    reg.register("beta", 2)
    reg.register("alpha", 1)
    with pytest.raises(ConfigError) as info:
        reg.get("gamma")
    assert str(info.value) == "unknown widget 'gamma' (known: alpha, beta)"
    with pytest.raises(ValueError, match=r"unknown widget 'gamma' \(known: alpha, beta\)"):
        reg.validate("gamma")
    assert reg.validate("alpha") == "alpha"
    empty: Registry[int] = Registry("gadget", error=KeyError)
    with pytest.raises(KeyError, match="none"):
        empty.get("x")


def test_builtins_are_imported_on_first_lookup_only(tmp_path, monkeypatch) -> None:
    """The owner module names its built-in modules; they import the owner to register; the first lookup
    imports them (and a lookup made while they import does not recurse)."""
    (tmp_path / "reg_owner_t.py").write_text(
        textwrap.dedent(
            """
            from edgeprune.errors import ConfigError
            from edgeprune.registry import Registry

            THINGS = Registry("thing", error=ConfigError, builtins=("reg_impl_t",))
            """
        )
    )
    (tmp_path / "reg_impl_t.py").write_text(
        textwrap.dedent(
            """
            from reg_owner_t import THINGS

            THINGS.register("x", 1)
            SEEN_DURING_IMPORT = THINGS.names()
            THINGS.register("y", 2)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("reg_owner_t", "reg_impl_t"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import reg_owner_t

    assert "reg_impl_t" not in sys.modules  # importing the owner does not import the implementations
    assert reg_owner_t.THINGS.get("y") == 2
    assert "reg_impl_t" in sys.modules
    assert reg_owner_t.THINGS.names() == ["x", "y"]
    assert sys.modules["reg_impl_t"].SEEN_DURING_IMPORT == ["x"]


def test_a_failing_builtin_is_raised_again_not_hidden(tmp_path, monkeypatch) -> None:
    (tmp_path / "reg_broken_t.py").write_text("raise ImportError('needs a missing package')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "reg_broken_t", raising=False)
    reg: Registry[int] = Registry("thing", error=ConfigError, builtins=("reg_broken_t",))
    for _ in range(2):
        with pytest.raises(ImportError, match="missing package"):
            reg.names()


def test_a_profile_names_a_declared_runtime_that_has_a_profiler(tmp_path) -> None:
    """Hardware profiles are checked against the runtime names declared in edgeprune.latency.runtimes
    (the names edgeprune.runtime implements): a declared runtime without a latency profiler is refused
    as plainly as an unknown one."""
    import yaml

    from edgeprune.errors import ProfileError
    from edgeprune.latency.profile import load_profile
    from edgeprune.latency.runtimes import profiled_runtimes

    assert profiled_runtimes() == ["onnxruntime-cpu", "tensorrt"]
    base = load_profile("mobile-cpu")
    data = yaml.safe_load((base.profile_dir / "mobile-cpu.yaml").read_text())
    for runtime, message in [
        ("onnxruntime-cuda", "no latency profiler for runtime 'onnxruntime-cuda'"),
        ("tflite", "unknown runtime 'tflite'"),
    ]:
        path = tmp_path / f"{runtime}.yaml"
        path.write_text(yaml.safe_dump({**data, "runtime": runtime}))
        with pytest.raises(
            ProfileError, match=message + r".*\(a profile may name: onnxruntime-cpu, tensorrt\)"
        ):
            load_profile(str(path))


def test_search_registries_list_the_builtins() -> None:
    from edgeprune.search.registries import EXECUTORS, OBJECTIVES, STRATEGIES

    assert STRATEGIES.names() == ["bilevel", "nsga3"]
    assert EXECUTORS.names() == ["local", "ray"]
    assert OBJECTIVES.names() == ["error", "latency", "macs", "params", "robustness"]
    assert OBJECTIVES.get("latency").metric == "latency_ms"
    from edgeprune.search.bilevel import bilevel
    from edgeprune.search.run import flat_nsga3

    assert STRATEGIES.get("nsga3") is flat_nsga3 and STRATEGIES.get("bilevel") is bilevel


def test_search_config_checks_names_against_the_registries() -> None:
    from edgeprune.search.config import SearchConfig

    for field, value, message in [
        ("strategy", "random", r"unknown search strategy 'random' \(known: bilevel, nsga3\)"),
        ("executor", "dask", r"unknown executor 'dask' \(known: local, ray\)"),
        ("objectives", ["error", "energy"], r"unknown objective 'energy' \(known: error, latency, macs"),
    ]:
        with pytest.raises(ConfigError, match=message) as info:
            SearchConfig.from_mapping({field: value}, where="search")
        assert "\n" not in str(info.value) and f"field '{field}" in str(info.value)
    assert SearchConfig(strategy="bilevel", executor="ray").strategy == "bilevel"


def test_cli_choices_are_the_registry_names() -> None:
    from edgeprune.cli.cmd_compile import command
    from edgeprune.search.registries import EXECUTORS, STRATEGIES

    params = {p.name: p for p in command.params}
    assert list(params["strategy"].type.choices) == STRATEGIES.names()
    assert list(params["executor"].type.choices) == EXECUTORS.names()


def test_cli_choices_follow_later_registrations_and_refuse_unknown_names(capsys) -> None:
    import click

    from edgeprune.cli import main
    from edgeprune.cli.choices import RegistryChoice

    reg: Registry[int] = Registry("widget", error=ConfigError)
    choice = RegistryChoice(reg)
    reg.register("late", 1)  # registered after the option was defined
    assert list(choice.choices) == ["late"]
    assert choice.convert("late", None, None) == "late"
    with pytest.raises(click.BadParameter, match="'early' is not 'late'"):
        choice.convert("early", None, None)

    assert main(["compile", "--strategy", "random", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'random' is not one of 'bilevel', 'nsga3'" in err
    assert main(["compile", "--objectives", "error,energy", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown objective 'energy' (known: error, latency, macs" in err
