"""Before the search: make sure the target's latency table prices every kernel the run's search space
can produce, measured on the device the figures are for.

* A local target (``host-cpu``): the kernels this table of *this machine* lacks are measured here,
  now, with a progress bar — all of them when the only table is another device's (it is never used as
  ``measured``). The search then never meets a kernel it cannot price.
* A device target: its table comes from the device (``edgeprune profile`` there or through
  ``edgeprune agent``); a table that lacks kernels is one line naming the command that measures them.
  A target with only an estimate needs nothing here.

The table is the one of the precision the run ships (``inputs.profile`` runs ``ship.precision`` models:
``compile --precision int8`` measures INT8 kernels here, quantized with the target's recipe). FP32
kernels are not measured as well: where this device's table already holds them, the search records
the FP32 prediction beside the INT8 one; where it does not, one line says so and names the command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from edgeprune.errors import ConfigError, ProfileError
from edgeprune.latency import HardwareProfile, KernelKey, predictor_for
from edgeprune.latency.profile_run import profile_model, space_kernels
from edgeprune.latency.store import ELSEWHERE, MEASURED, choose_table
from edgeprune.pipeline.inputs import Inputs
from edgeprune.progress import Reporter


def _profile_command(inputs: Inputs, profile: HardwareProfile | None = None) -> str:
    c, h, w = inputs.data.input_shape
    p = profile or inputs.profile
    classes = f" --num-classes {inputs.loaded.num_classes}" if inputs.loaded.num_classes else ""
    threads = f" --threads {p.threads}"
    ranks = " --ranks" if inputs.cfg.search.rank_genes else ""
    return (
        f"edgeprune profile --target {p.name} --model {inputs.cfg.model.name}{classes} "
        f"--input-shape {c},{h},{w}{threads}{p.precision_flag}{ranks}"
    )


def _say_fp32_beside(inputs: Inputs, keys: Sequence[KernelKey], reporter: Reporter) -> None:
    """At another precision than FP32, say whether the FP32 prediction will be shown beside it (this
    device's table holds FP32 kernels bounding the space) or how to add it (never measured here)."""
    p = inputs.profile
    if p.precision == "fp32":
        return
    fp32 = p.with_precision("fp32")
    try:
        source = predictor_for(p).source
        pred = predictor_for(fp32)
        covered = pred.source == source and not pred.uncovered([replace(k, precision="fp32") for k in keys])
    except (ConfigError, ProfileError):
        covered = False
    if covered:
        reporter.info(
            f"latency on {p.name}: {p.precision} searched, FP32 from the same table shown beside it"
        )
    else:
        reporter.info(
            f"latency on {p.name}: {p.precision} only (this device's table does not price the space in FP32; "
            f"`{_profile_command(inputs, fp32)}` adds FP32 figures beside it)"
        )


def ensure_latency_table(inputs: Inputs, reporter: Reporter) -> None:
    """Measure (local targets) or demand (device targets) what the search's latency objective needs."""
    p = inputs.profile
    choice = choose_table(p)
    if choice.table is None and p.estimate is not None and not p.local:
        return  # an estimate prices every kernel; its label says what it is
    if not p.local and choice.table is None:  # said before the kernels are listed (tens of seconds)
        raise ProfileError(f"{choice.note}; on the device: `{_profile_command(inputs)}`")
    model, shape = inputs.loaded.model, inputs.data.input_shape
    reporter.info(f"finding the kernels the search space of {inputs.cfg.model.name} can produce on {p.name}")
    keys = space_kernels(p, model, shape, ranks=inputs.cfg.search.rank_genes)
    if not p.local:
        missing = predictor_for(p).uncovered(keys)
        if missing:
            raise ProfileError(
                f"the {p.name} table does not cover {inputs.cfg.model.name} at {shape} (e.g. {missing[0]}); "
                f"run `{_profile_command(inputs)}` on the device or add --remote URL of its `edgeprune agent`"
            )
        if choice.status == ELSEWHERE:
            reporter.info(f"latency on {p.name}: {choice.note}; figures are labelled '{ELSEWHERE}'")
        _say_fp32_beside(inputs, keys, reporter)
        return
    if choice.status == MEASURED:
        assert choice.table is not None
        todo = [k for k in keys if choice.table.get(k) is None]
        if not todo:
            _say_fp32_beside(inputs, keys, reporter)
            return
        why = f"{len(todo)} of its {len(keys)} kernels are not in this machine's table yet"
    elif choice.status == ELSEWHERE:
        why = f"the only {p.name} table was {choice.note}; measuring its {len(keys)} kernels on this machine"
    else:
        why = f"{choice.note}; measuring its {len(keys)} kernels"
    reporter.stage("profile", why)
    summary = profile_model(
        p, model, shape, model_name=inputs.cfg.model.name, ranks=inputs.cfg.search.rank_genes,
        on_progress=reporter.progress("measuring kernels"),
    )  # fmt: skip
    reporter.info(f"measured {summary.measured_now} kernel passes into {summary.table_path}")
    for line in summary.warnings():
        reporter.info(line)
    pred = predictor_for(p)
    if pred.source != MEASURED or pred.uncovered(keys):  # pragma: no cover - profile_model measures them all
        raise ProfileError(f"measuring the {p.name} table failed; run `{_profile_command(inputs)}`")
    _say_fp32_beside(inputs, keys, reporter)
