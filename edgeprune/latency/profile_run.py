"""``edgeprune profile`` and compile's on-the-spot measurement: measure a target's table for the
search space of one network.

Chooses the timer from the target's runtime (ONNX Runtime here, TensorRT on a GPU device, or a remote
agent), enumerates exactly the kernels the network's search space can produce at the target's channel
multiple and the network's real input size (:mod:`edgeprune.latency.enumerate`), and measures those
the table does not hold yet, resumably, into the user's table of that device
(:mod:`edgeprune.latency.store`) — never into the installed package.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from edgeprune.errors import ConfigError, RuntimeUnavailableError
from edgeprune.latency.kernels import KernelKey
from edgeprune.latency.profile import HardwareProfile, load_profile
from edgeprune.latency.profiler import KernelTimer, LocalOrtTimer, profile_kernels, timer_fingerprint
from edgeprune.latency.store import edgeprune_home, local_fingerprint, table_path_for

ENUMERATION_VERSION = 1
CALIBRATION_NETWORKS = 10  # random members of the space timed end to end with the kernels


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


def space_kernels(
    profile: HardwareProfile,
    model: nn.Module,
    input_shape: tuple[int, int, int],
    ranks: bool = False,
    on_probe: Callable[[int, int], None] | None = None,
) -> list[KernelKey]:
    """The kernels ``model``'s search space can produce on ``profile``, cached in the user data directory
    (finding them builds the network once per gene level: tens of seconds for a deep network)."""
    from edgeprune.atomic import write_text_atomic
    from edgeprune.latency.enumerate import enumerate_kernels

    ident = json.dumps(
        [
            ENUMERATION_VERSION,
            str(model),
            list(input_shape),
            profile.channel_multiple,
            profile.precision,
            ranks,
        ]
    )
    path = edgeprune_home() / "kernels" / f"{hashlib.sha256(ident.encode()).hexdigest()[:16]}.json"
    if path.is_file():
        try:
            return [KernelKey.parse(k) for k in json.loads(path.read_text())]
        except (OSError, ValueError):
            pass  # a damaged cache is recomputed
    keys = enumerate_kernels(
        model, input_shape, profile.channel_multiple, profile.precision, ranks=ranks, on_probe=on_probe
    )
    write_text_atomic(path, json.dumps([str(k) for k in keys]))
    return keys


def calibration_networks(
    model: nn.Module, input_shape: tuple[int, int, int], multiple: int, n: int, seed: int = 0
) -> list[nn.Module]:
    """``n`` members of ``model``'s search space (seeded: the same ones on every run), built as the
    search builds candidates; half keep every block, half drop some, so width and depth both vary."""
    if n <= 0:
        return []
    import numpy as np

    from edgeprune.graph import apply_plan
    from edgeprune.latency.enumerate import widest_space

    example, analysis, space = widest_space(model, input_shape, multiple)
    if space is None:
        return []
    rng = np.random.default_rng(seed)
    out = []
    for i, genome in enumerate(space.random(rng, n)):
        if i % 2 == 0:
            genome = np.where([g.kind == "depth" for g in space.genes], space.upper_bounds, genome)
        out.append(apply_plan(model, space.decode(genome), example, analysis=analysis))
    return out


def table_destination(profile: HardwareProfile, timer: KernelTimer) -> Path:
    """The user's table of ``profile`` on the device ``timer`` measures (this machine, or the agent's)."""
    here = local_fingerprint(profile)
    return table_path_for(profile, here if here is not None else timer_fingerprint(timer.info()))


def profile_model(
    profile: HardwareProfile,
    model: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    model_name: str,
    timer: KernelTimer | None = None,
    table_path: Path | None = None,
    passes: int = 3,
    warmup: int = 30,
    runs: int = 100,
    ranks: bool = False,
    calibration: int = CALIBRATION_NETWORKS,
    on_progress: Callable[[int, int, KernelKey | None], None] | None = None,
    on_plan: Callable[[int, Path], None] | None = None,
) -> ProfileSummary:
    """Measure every kernel ``model``'s search space can produce on ``profile`` that the table lacks,
    the unpruned network end to end, and ``calibration`` networks of the space end to end (what
    kernels timed alone miss in a whole network is fitted on them: :class:`OverheadModel`)."""
    from edgeprune.latency.kernel_models import export_onnx
    from edgeprune.latency.kernels import extract_kernels

    if passes < 1 or runs < 5 or warmup < 0:
        raise ConfigError("need passes >= 1, runs >= 5 and warmup >= 0")
    keys = space_kernels(profile, model, input_shape, ranks)
    timer = timer or make_timer(profile, None, None, warmup, runs)
    path = table_path or table_destination(profile, timer)
    if on_plan:
        on_plan(len(keys), path)
    base = extract_kernels(model, input_shape, profile.precision)
    networks = [(base, export_onnx(model, (1, *input_shape)))]
    for net in calibration_networks(model, input_shape, profile.channel_multiple, calibration):
        networks.append(
            (extract_kernels(net, input_shape, profile.precision), export_onnx(net, (1, *input_shape)))
        )
    table, measured = profile_kernels(
        keys,
        path,
        timer,
        passes=passes,
        warmup=warmup,
        runs=runs,
        on_progress=on_progress,
        networks=networks,
    )
    return ProfileSummary(
        profile.name, model_name, path, len(keys), measured, len(table.entries), table.source
    )


def run_profile(
    target: str,
    model_name: str,
    *,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    threads: int | None = None,
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
    """``edgeprune profile``: build ``model_name`` and measure its search space on ``target``."""
    from edgeprune.config import ModelConfig
    from edgeprune.models import build_model

    profile = load_profile(target)
    if threads is not None:
        profile = profile.with_threads(threads)
    loaded = build_model(ModelConfig(name=model_name, num_classes=num_classes))
    shape = input_shape or loaded.input_shape
    if shape is None:
        raise ConfigError(f"{model_name} has no natural input shape; pass --input-shape C,H,W")
    timer = make_timer(profile, remote, token, warmup, runs)
    return profile_model(
        profile, loaded.model, shape, model_name=model_name, timer=timer, table_path=table_path,
        passes=passes, warmup=warmup, runs=runs, ranks=ranks, on_progress=on_progress, on_plan=on_plan,
    )  # fmt: skip
