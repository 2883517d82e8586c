"""``edgeprune profile`` and compile's on-the-spot measurement: measure a target's table for the
search space of one network.

Chooses the timer from the target's runtime (ONNX Runtime here, TensorRT on a GPU device, or a remote
agent), enumerates exactly the kernels the network's search space can produce at the target's channel
multiple and the network's real input size (:mod:`edgeprune.latency.enumerate`), and measures those
the table does not hold yet, resumably, into the user's table of that device
(:mod:`edgeprune.latency.store`) — never into the installed package.

At INT8 on ONNX Runtime, every model timed — each kernel's pair of single-kernel models, the unpruned
network and the calibration networks — is first quantized with the target's calibration recipe
(:func:`profile_quantizer`), so the kernels, the empty-call overhead and the per-network overhead
model of the INT8 entries are all INT8 figures. TensorRT builds its INT8 engines from the FP32 models
itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from edgeprune.errors import ConfigError, RuntimeUnavailableError
from edgeprune.latency.kernels import KernelKey
from edgeprune.latency.profile import HardwareProfile, target_profile
from edgeprune.latency.profiler import (
    NETWORK_SETTLE,
    KernelTimer,
    LocalOrtTimer,
    profile_kernels,
    timer_fingerprint,
)
from edgeprune.latency.quantize import ProfileQuantizer, load_recipe
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
    without_a_quiet_pass: int = 0  # entries measured only while the machine ran slow (quiet watch)
    unsettled_networks: int = 0  # whole networks whose two fastest passes still disagree

    def warnings(self) -> list[str]:
        """One line per way this run's measurements may not be the machine's speed."""
        again = f"delete {self.table_path} and profile again when this machine is quiet"
        out = []
        if self.without_a_quiet_pass:
            out.append(
                f"warning: {self.without_a_quiet_pass} entries were measured only while this machine ran "
                f"slow (other work on its cores); {again}"
            )
        if self.unsettled_networks:
            out.append(
                f"warning: the end-to-end times of {self.unsettled_networks} whole networks did not settle "
                f"(their fastest passes differ by more than {NETWORK_SETTLE * 100:g} %), so the per-network overhead is uncertain; {again}"
            )
        return out


def make_timer(
    profile: HardwareProfile, remote: str | None, token: str | None, warmup: int, runs: int
) -> KernelTimer:
    """The timer for ``profile``: a remote agent, local ONNX Runtime, or local TensorRT."""
    if profile.runtime == "onnxruntime-cpu" and profile.precision not in ("fp32", "int8"):
        raise ConfigError(
            f"ONNX Runtime profiling supports fp32 and int8; {profile.name} is {profile.precision}"
        )
    if remote:
        from edgeprune.latency.agent_client import RemoteTimer

        # ONNX Runtime runs a quantized model as it is: the agent is asked for a plain (fp32) session
        precision = "fp32" if profile.runtime == "onnxruntime-cpu" else profile.precision
        return RemoteTimer(
            remote, token, profile.runtime, precision, profile.threads, warmup, runs,
            spinning=profile.spinning,
        )  # fmt: skip
    if profile.runtime == "onnxruntime-cpu":
        return LocalOrtTimer(profile.threads, warmup, runs, spinning=profile.spinning)
    if profile.runtime == "tensorrt":
        from edgeprune.latency.tensorrt_profiler import TensorRTTimer

        return TensorRTTimer(profile.precision, warmup, runs)
    raise RuntimeUnavailableError(f"no profiler for runtime {profile.runtime!r}")


def profile_quantizer(profile: HardwareProfile) -> ProfileQuantizer | None:
    """What turns the FP32 models the profiler builds into the models timed on ``profile``: the
    target's INT8 recipe (``calibration/<target>.yaml``) at INT8 on ONNX Runtime, else nothing."""
    if profile.precision == "int8" and profile.runtime == "onnxruntime-cpu":
        return ProfileQuantizer(load_recipe(profile.name))
    return None


def space_kernels(
    profile: HardwareProfile,
    model: nn.Module,
    input_shape: tuple[int, int, int],
    ranks: bool = False,
    on_probe: Callable[[int, int], None] | None = None,
) -> list[KernelKey]:
    """The kernels ``model``'s search space can produce on ``profile``, cached in the user data directory
    (finding them builds the network once per gene level: tens of seconds for a deep network).

    The list does not depend on the precision, which only labels the keys: it is found and cached once
    (labelled fp32) and relabelled with the profile's precision."""
    from edgeprune.atomic import write_text_atomic
    from edgeprune.latency.enumerate import enumerate_kernels

    ident = json.dumps(
        [ENUMERATION_VERSION, str(model), list(input_shape), profile.channel_multiple, "fp32", ranks]
    )
    path = edgeprune_home() / "kernels" / f"{hashlib.sha256(ident.encode()).hexdigest()[:16]}.json"
    keys: list[KernelKey] | None = None
    if path.is_file():
        try:
            keys = [KernelKey.parse(k) for k in json.loads(path.read_text())]
        except (OSError, ValueError):
            keys = None  # a damaged cache is recomputed
    if keys is None:
        keys = enumerate_kernels(
            model, input_shape, profile.channel_multiple, "fp32", ranks=ranks, on_probe=on_probe
        )
        write_text_atomic(path, json.dumps([str(k) for k in keys]))
    if profile.precision == "fp32":
        return keys
    return [replace(k, precision=profile.precision) for k in keys]


def calibration_networks(
    model: nn.Module, input_shape: tuple[int, int, int], multiple: int, n: int, seed: int = 0
) -> list[nn.Module]:
    """``n`` members of ``model``'s search space (seeded: the same ones on every run), built as the
    search builds candidates, whose weight counts are spread from the space's smallest network towards
    the unpruned one, evenly in √W (width: more of them where the weights start to leave the cache).

    The overhead fit prices the weights a network reads (:class:`OverheadModel`'s knee ``W₀`` sits at
    one of these networks' ``W``), so they are chosen by ``W`` itself: from a pool of spread genomes
    (:meth:`SearchSpace.spread`), half of them with every block kept, the one nearest each target
    ``W``, alternating between networks that keep every block and networks that drop some, so width and
    depth both vary. (Chosen by genome size alone, a MobileNetV2 set left 250k–1M weights empty and the
    fit priced the networks there 20–50 % slow.)"""
    if n <= 0:
        return []
    import numpy as np

    from edgeprune.graph import apply_plan
    from edgeprune.graph.plan import predict_params
    from edgeprune.latency.enumerate import widest_space

    example, analysis, space = widest_space(model, input_shape, multiple)
    if space is None:
        return []
    rng = np.random.default_rng(seed)
    depth = np.array([g.kind == "depth" for g in space.genes])
    # the space's smallest network itself (a front's fastest members come close to it), then the pool
    drops = np.vstack([np.zeros((1, space.n_var), dtype=int), space.spread(rng, 8 * n)])
    keeps = np.where(depth, space.upper_bounds, drops)
    pool = [(g, bool(k)) for k, genomes in ((0, drops), (1, keeps)) for g in genomes]
    root = np.sqrt([predict_params(analysis, space.decode(g)) for g, _ in pool])
    lo, hi = root[0], float(np.sqrt(predict_params(analysis, space.decode(space.upper_bounds))))
    chosen = [0]
    for i in range(1, n):
        target = lo + (hi - lo) * i / n  # the unpruned network (i = n) is timed anyway
        free = [j for j in range(len(pool)) if j not in chosen]
        kind = [j for j in free if pool[j][1] == (i % 2 == 1)] or free  # alternate: keep blocks, drop some
        nearest = min(free, key=lambda j: abs(root[j] - target))
        preferred = min(kind, key=lambda j: abs(root[j] - target))
        close = abs(root[preferred] - target) <= abs(root[nearest] - target) + 0.05 * (hi - lo)
        chosen.append(preferred if close else nearest)
    chosen.sort(key=lambda j: root[j])
    return [apply_plan(model, space.decode(pool[j][0]), example, analysis=analysis) for j in chosen]


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
    quantize = profile_quantizer(profile)  # a target without an INT8 recipe fails before any work
    keys = space_kernels(profile, model, input_shape, ranks)
    timer = timer or make_timer(profile, None, None, warmup, runs)
    path = table_path or table_destination(profile, timer)
    if on_plan:
        on_plan(len(keys), path)

    def timed(net: nn.Module) -> bytes:  # the network as it runs on the target (INT8: quantized)
        onnx_model = export_onnx(net, (1, *input_shape))
        return onnx_model if quantize is None else quantize(onnx_model)

    base = extract_kernels(model, input_shape, profile.precision)
    networks = [(base, timed(model))]
    for net in calibration_networks(model, input_shape, profile.channel_multiple, calibration):
        networks.append((extract_kernels(net, input_shape, profile.precision), timed(net)))
    table, measured = profile_kernels(
        keys,
        path,
        timer,
        passes=passes,
        warmup=warmup,
        runs=runs,
        on_progress=on_progress,
        networks=networks,
        quantize=quantize,
    )
    loud = len(table.provenance.get("quiet", {}).get("without_a_quiet_pass", ())) if measured else 0
    unsettled = len(table.provenance.get("network_passes", {}).get("unsettled", ())) if measured else 0
    return ProfileSummary(
        profile.name, model_name, path, len(keys), measured, len(table.entries), table.source, loud, unsettled
    )


def run_profile(
    target: str,
    model_name: str,
    *,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    threads: int | None = None,
    precision: str | None = None,
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
    """``edgeprune profile``: build ``model_name`` and measure its search space on ``target``, at
    ``threads`` and ``precision`` when given (else the target's own)."""
    from edgeprune.config import ModelConfig
    from edgeprune.models import build_model

    profile = target_profile(target, threads, precision)
    loaded = build_model(ModelConfig(name=model_name, num_classes=num_classes))
    shape = input_shape or loaded.input_shape
    if shape is None:
        raise ConfigError(f"{model_name} has no natural input shape; pass --input-shape C,H,W")
    timer = make_timer(profile, remote, token, warmup, runs)
    return profile_model(
        profile, loaded.model, shape, model_name=model_name, timer=timer, table_path=table_path,
        passes=passes, warmup=warmup, runs=runs, ranks=ranks, on_progress=on_progress, on_plan=on_plan,
    )  # fmt: skip
