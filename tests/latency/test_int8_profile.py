"""INT8 latency on ONNX Runtime: kernels are timed quantized with the target's recipe, the INT8 entries
sit beside the FP32 ones in this machine's table, and an INT8 target is priced only from INT8 entries."""

from __future__ import annotations

import json

import onnx
import pytest

from edgeprune.cli import main
from edgeprune.errors import ConfigError, ProfileError
from edgeprune.latency import extract_kernels, predictor_for, profiler
from edgeprune.latency import profile_run as pr
from edgeprune.latency.kernel_models import export_onnx, kernel_models
from edgeprune.latency.predictor import overhead_key
from edgeprune.latency.profile import load_profile, target_profile
from edgeprune.latency.profiler import LocalOrtTimer, network_keys, profile_kernels
from edgeprune.latency.quantize import ProfileQuantizer, load_recipe
from edgeprune.latency.quiet import PROBE_KEY
from edgeprune.latency.store import choose_table, own_table_path
from edgeprune.latency.table import LatencyTable
from edgeprune.models.cifar_resnet import CifarResNet

SHAPE = (3, 32, 32)


class _RecordingTimer(LocalOrtTimer):
    """Local ONNX Runtime that keeps every model it timed."""

    def __init__(self) -> None:
        super().__init__(threads=1, warmup=3, runs=15)
        self.models: list[bytes] = []

    def time_models_ms(self, models):
        self.models += models
        return super().time_models_ms(models)


@pytest.fixture(scope="module")
def int8_table(tmp_path_factory):
    """This machine's host-cpu table holding the INT8 kernels of a small CIFAR ResNet, measured for real
    (one pass) into a fresh EDGEPRUNE_HOME."""
    home = tmp_path_factory.mktemp("int8_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEPRUNE_HOME", str(home))
        profile = target_profile("host-cpu", precision="int8")
        net = CifarResNet((1, 1, 1)).eval()
        kernels = extract_kernels(net, SHAPE, "int8")
        quantize = ProfileQuantizer(load_recipe("host-cpu"))
        timer = _RecordingTimer()
        table, _ = profile_kernels(
            kernels, own_table_path(profile), timer, passes=1, warmup=3, runs=15,
            networks=[(kernels, quantize(export_onnx(net, (1, *SHAPE))))], quantize=quantize,
        )  # fmt: skip
        yield home, profile, net, kernels, table, timer


def test_int8_kernels_are_timed_quantized_under_int8_keys(int8_table):
    _, _, _, kernels, table, timer = int8_table
    assert {k.precision for k in table.entries} == {"int8"} and table.precisions == {"int8"}
    for key in {*kernels, overhead_key("int8"), *network_keys(kernels)[:1]}:
        assert table.entries[key].median_ms > 0, key
    # every model timed but the empty call (and the quiet watch's probe, which times the machine, not
    # a kernel) was the recipe's QOperator graph: no float conv was timed
    probe = kernel_models(PROBE_KEY)[1]
    ops = [{n.op_type for n in onnx.load_from_string(m).graph.node} for m in timer.models if m != probe]
    assert all("Conv" not in o for o in ops) and sum("QLinearConv" in o for o in ops) == len(ops) - sum(
        o == {"Identity"} for o in ops
    )
    recipe = table.provenance["quantization"]["int8"]["recipe"]
    assert recipe["format"] == "qoperator" and recipe["activation_type"] == "uint8" and recipe["per_channel"]


def test_an_int8_target_is_priced_from_int8_entries(int8_table, monkeypatch):
    home, profile, net, kernels, table, _ = int8_table
    monkeypatch.setenv("EDGEPRUNE_HOME", str(home))
    choice = choose_table(profile)
    assert choice.status == "measured" and choice.path == own_table_path(profile)
    pred = predictor_for(profile)
    assert pred.source == "measured" and pred.precision == "int8"
    total_key, residual_key = network_keys(kernels)
    total, residual = table.entries[total_key].median_ms, table.entries[residual_key].median_ms
    kernel_sum = sum(pred.kernel_ms(k) for k in kernels)
    predicted = pred.predict_ms(net, SHAPE)  # the profiled network itself: its kernels + its own residual
    assert predicted == pytest.approx(kernel_sum + residual, rel=1e-6)
    # its measured time, exactly: the residual keeps its sign (below zero when the kernels timed alone
    # sum above the network's own time), bounded only at half the kernel sum
    assert residual >= -0.5 * kernel_sum
    assert predicted == pytest.approx(total, rel=1e-6)
    # the same file is not an FP32 table: FP32 falls back to the reference measured elsewhere
    fp32 = load_profile("host-cpu")
    assert own_table_path(fp32) == own_table_path(profile)  # one file per device, precision in the keys
    assert choose_table(fp32).status == "measured elsewhere"


def test_an_fp32_only_table_is_refused_for_int8_with_the_command(int8_table, tmp_path, monkeypatch):
    _, profile, _, _, table, _ = int8_table
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path))
    fp32_only = LatencyTable.load(load_profile("host-cpu").profile_dir / "tables" / "host-cpu.json")
    fp32_only.provenance["fingerprint"] = table.provenance["fingerprint"]  # this machine's, FP32 only
    fp32_only.save(own_table_path(profile))
    assert choose_table(load_profile("host-cpu")).status == "measured"
    with pytest.raises(ProfileError) as err:
        predictor_for(profile)
    msg = str(err.value)
    assert "\n" not in msg and "holds no int8 kernels" in msg
    assert "`edgeprune profile --target host-cpu --model MODEL --precision int8`" in msg


def test_precision_a_runtime_does_not_run_is_one_line():
    with pytest.raises(ConfigError, match="host-cpu cannot run fp16 models: onnxruntime-cpu runs fp32, int8"):
        target_profile("host-cpu", precision="fp16")
    orin = target_profile("jetson-orin", precision="int8")
    assert orin.precision == "int8" and orin.estimate is None  # an FP16 roofline is not INT8 latency
    assert orin.precision_flag == " --precision int8" and load_profile("jetson-orin").precision_flag == ""
    assert target_profile("host-cpu", precision="auto") == load_profile("host-cpu")


def test_profile_cli_measures_int8(tmp_path, monkeypatch):
    """``edgeprune profile --precision int8`` quantizes every timed model (here a stand-in quantizer,
    constant kernel times, the unpruned network's kernels and no calibration networks: the real ones are
    tested above) into INT8 entries of this machine's table."""
    monkeypatch.setenv("EDGEPRUNE_HOME", str(tmp_path))
    seen: list[bytes] = []

    class _Stamp:
        def __call__(self, model: bytes) -> bytes:
            seen.append(model)
            return model

        def describe(self):
            return {"recipe": "stand-in"}

    monkeypatch.setattr(
        pr, "profile_quantizer", lambda profile: _Stamp() if profile.precision == "int8" else None
    )
    # the unpruned network's kernels stand for its space's (enumerating the space takes a minute)
    monkeypatch.setattr(
        pr,
        "space_kernels",
        lambda profile, model, shape, ranks=False: extract_kernels(model, shape, profile.precision),
    )
    monkeypatch.setattr(pr, "calibration_networks", lambda *a, **k: [])
    monkeypatch.setattr(profiler, "measure_kernel", lambda key, timer, models=None: (0.002, 0.002, 0.002, 5))
    args = ["profile", "--target", "host-cpu", "--model", "digits-resnet", "--passes", "1", "--runs", "5",
            "--warmup", "0", "--quiet", "--precision", "int8"]  # fmt: skip
    assert main(args) == 0
    path = own_table_path(target_profile("host-cpu", precision="int8"))
    data = json.loads(path.read_text())
    keys = list(data["entries"])
    assert keys and all(k.endswith("/int8") for k in keys)
    assert data["provenance"]["quantization"] == {"int8": {"recipe": "stand-in"}}
    n_kernels = sum(not k.startswith("overhead/") for k in keys)
    assert len(seen) >= n_kernels + 1  # each kernel's models (a context is quantized once), the network
    assert main(["profile", "--target", "host-cpu", "--precision", "fp16", "--quiet"]) != 0
