"""``edgeprune profile``: measure a target's table for the search space of one network.

Chooses the timer from the target's runtime (ONNX Runtime here, TensorRT on a GPU device, or a remote
agent), enumerates the kernels at the profile's channel multiple, measures them resumably, and —
the first time a target with only an estimate is measured — points its profile at the new table,
so every later figure for that target is ``measured``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from edgeprune.atomic import write_text_atomic
from edgeprune.errors import ConfigError, RuntimeUnavailableError
from edgeprune.latency.kernels import KernelKey
from edgeprune.latency.profile import HardwareProfile, load_profile
from edgeprune.latency.profiler import KernelTimer, LocalOrtTimer, profile_kernels


@dataclass(frozen=True)
class ProfileSummary:
    """What a profiling run did."""

    target: str
    model: str
    table_path: Path
    kernels: int
    measured_now: int
    entries: int
    source: str
    profile_updated: bool


def default_table_path(profile: HardwareProfile) -> Path:
    if profile.table is not None:
        return profile.table_path()
    return (profile.profile_dir or Path.cwd()) / "tables" / f"{profile.name}.json"


def make_timer(
    profile: HardwareProfile, remote: str | None, token: str | None, warmup: int, runs: int
) -> KernelTimer:
    """The timer for ``profile``: a remote agent, local ONNX Runtime, or local TensorRT."""
    if remote:
        from edgeprune.latency.agent_client import RemoteTimer

        return RemoteTimer(remote, token, profile.runtime, profile.precision, profile.threads, warmup, runs)
    if profile.runtime == "onnxruntime-cpu":
        if profile.precision != "fp32":
            raise ConfigError(
                f"local ONNX Runtime profiling supports fp32 only; {profile.name} is {profile.precision}"
            )
        return LocalOrtTimer(profile.threads, warmup, runs)
    if profile.runtime == "tensorrt":
        from edgeprune.latency.tensorrt_profiler import TensorRTTimer

        return TensorRTTimer(profile.precision, warmup, runs)
    raise RuntimeUnavailableError(f"no profiler for runtime {profile.runtime!r}")


def _point_profile_at_table(profile: HardwareProfile, table_path: Path) -> bool:
    if profile.table is not None or profile.profile_dir is None:
        return False
    yaml_path = profile.profile_dir / f"{profile.name}.yaml"
    data = yaml.safe_load(yaml_path.read_text())
    rel = (
        table_path.relative_to(profile.profile_dir)
        if table_path.is_relative_to(profile.profile_dir)
        else table_path
    )
    data["table"] = {"source": "measured", "path": str(rel)}
    write_text_atomic(yaml_path, yaml.safe_dump(data, sort_keys=False))
    return True


def run_profile(
    target: str,
    model_name: str,
    *,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    table_path: Path | None = None,
    passes: int = 3,
    warmup: int = 30,
    runs: int = 100,
    remote: str | None = None,
    token: str | None = None,
    ranks: bool = False,
    on_progress: Callable[[int, int, KernelKey | None], None] | None = None,
    on_plan: Callable[[int, Path], None] | None = None,
) -> ProfileSummary:
    """Measure every kernel ``model_name``'s search space can produce on ``target``."""
    from edgeprune.config import ModelConfig
    from edgeprune.latency.enumerate import enumerate_kernels
    from edgeprune.latency.kernel_models import export_onnx
    from edgeprune.latency.kernels import extract_kernels
    from edgeprune.models import build_model

    if passes < 1 or runs < 5 or warmup < 0:
        raise ConfigError("need passes >= 1, runs >= 5 and warmup >= 0")
    profile = load_profile(target)
    loaded = build_model(ModelConfig(name=model_name, num_classes=num_classes))
    shape = input_shape or loaded.input_shape
    if shape is None:
        raise ConfigError(f"{model_name} has no natural input shape; pass --input-shape C,H,W")
    keys = enumerate_kernels(loaded.model, shape, profile.channel_multiple, profile.precision, ranks=ranks)
    timer = make_timer(profile, remote, token, warmup, runs)
    path = table_path or default_table_path(profile)
    if on_plan:
        on_plan(len(keys), path)
    base = extract_kernels(loaded.model, shape, profile.precision)
    network = (base, export_onnx(loaded.model, (1, *shape)))
    table, measured = profile_kernels(
        keys,
        path,
        timer,
        passes=passes,
        warmup=warmup,
        runs=runs,
        on_progress=on_progress,
        networks=[network],
    )
    updated = False
    if table_path is None:
        updated = _point_profile_at_table(profile, path)
    return ProfileSummary(
        profile.name, model_name, path, len(keys), measured, len(table.entries), table.source, updated
    )
