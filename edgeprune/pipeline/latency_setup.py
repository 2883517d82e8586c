"""Before the search: make sure the target's latency table prices every kernel the run's search space
can produce (on host targets by measuring what is missing on this machine)."""

from __future__ import annotations

from typing import Any

from edgeprune.pipeline.inputs import Inputs
from edgeprune.progress import Reporter


def missing_kernels(inputs: Inputs) -> list[Any]:
    """Kernels of the network the target's measured table does not cover (empty for estimates)."""
    from edgeprune.errors import ProfileError
    from edgeprune.latency import extract_kernels, predictor_for

    try:
        pred = predictor_for(inputs.profile)
    except ProfileError:
        return ["(no table yet)"]
    if pred.source == "estimate":
        return []
    if inputs.cfg.model.transfer:  # transfer mode: the new head's kernel sizes are often not in the table
        return _unpredictable_kernels(pred, inputs)
    keys = extract_kernels(inputs.loaded.model, inputs.data.input_shape, inputs.profile.precision)
    return [k for k in keys if not pred.covers_family(k)]


def _transfer_kernels(inputs: Inputs) -> list[Any]:
    """Every kernel a transfer network's search space can produce: the backbone's (as for the family
    itself) and the head's Linear layers over all kept widths of their inputs and hidden outputs."""
    from dataclasses import replace
    from itertools import product

    from edgeprune.latency import extract_kernels
    from edgeprune.latency.enumerate import channel_levels, enumerate_kernels

    net, shape = inputs.loaded.model, inputs.data.input_shape
    p = inputs.profile
    backbone = net.get_submodule("backbone")
    keys = dict.fromkeys(enumerate_kernels(backbone, shape, p.channel_multiple, p.precision))
    base = extract_kernels(net, shape, p.precision)
    heads = [(i, k) for i, k in enumerate(base) if k.op in ("gap_linear", "linear")]
    gap = heads[0][1]
    for j, (i, k) in enumerate(heads):
        couts = (k.cout,) if i == len(base) - 1 else channel_levels(k.cout, p.channel_multiple)
        # the kernel extractor labels a Linear "gap_linear" whenever its inputs equal the last feature
        # map's channels, the head's second Linear too: both of its labels are measured
        labels = {k} if j == 0 else {replace(gap, cin=k.cin, cout=k.cout), replace(k, op="linear", h=1, w=1)}
        for v, cin, cout in product(labels, channel_levels(k.cin, p.channel_multiple), couts):
            keys.setdefault(v.with_channels(cin, 0, cout), None)
    return list(keys)


def _unpredictable_kernels(pred: Any, inputs: Inputs) -> list[Any]:
    """Kernels of a transfer network's search space that the table cannot interpolate."""
    from edgeprune.errors import ProfileError

    missing = []
    for k in _transfer_kernels(inputs):
        try:
            pred.kernel_ms(k)
        except ProfileError:
            missing.append(k)
    return missing


def _measure_transfer_kernels(inputs: Inputs, keys: list[Any]) -> int:
    """Measure ``keys`` on this CPU into the host-cpu table (the head's sizes); returns how many."""
    from edgeprune.latency.profile_run import make_timer
    from edgeprune.latency.profiler import profile_kernels

    timer = make_timer(inputs.profile, None, None, warmup=30, runs=100)
    _, measured = profile_kernels(keys, inputs.profile.table_path(), timer, passes=3, warmup=30, runs=100)
    return measured


def ensure_latency_table(inputs: Inputs, reporter: Reporter) -> None:
    """On ``host-cpu`` (this machine) measure the kernels the table lacks; elsewhere say how to."""
    from edgeprune.errors import ProfileError
    from edgeprune.latency.profile_run import run_profile

    missing = missing_kernels(inputs)
    if not missing:
        return
    p = inputs.profile
    if p.name != "host-cpu" or p.runtime != "onnxruntime-cpu":
        raise ProfileError(
            f"the {p.name} table does not cover {inputs.cfg.model.name} (e.g. {missing[0]}); run `edgeprune profile "
            f"--target {p.name} --model {inputs.cfg.model.name}` on the device or through `edgeprune agent`"
        )
    reporter.stage(
        "profile", f"measuring the kernels of {inputs.cfg.model.name} on this CPU for the host-cpu table"
    )
    if inputs.cfg.model.transfer and missing != ["(no table yet)"]:  # transfer mode: the head's sizes
        n = _measure_transfer_kernels(inputs, missing)
        reporter.info(f"measured {n} kernels of the transfer network into {p.table_path()}")
        return
    summary = run_profile(
        p.name,
        inputs.cfg.model.name,
        input_shape=inputs.data.input_shape,
        num_classes=inputs.loaded.num_classes,
    )
    reporter.info(f"measured {summary.measured_now} kernels into {summary.table_path}")
