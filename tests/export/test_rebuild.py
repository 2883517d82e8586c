"""`edgeprune.export.rebuild`: one rebuild of a (pruned) network from a pick directory or a run's base."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgeprune.config import ModelConfig
from edgeprune.errors import ModelLoadError
from edgeprune.export.manifest import write_manifest
from edgeprune.export.pick import write_extra_buffers
from edgeprune.export.rebuild import load_buffers, load_pick, rebuild
from edgeprune.graph import apply_plan
from edgeprune.models import build_model
from tests.export.fixtures import random_plan

SHAPE = (3, 32, 32)


def _pick(base_weights: Path, out: Path, seed: int = 3) -> tuple[Path, torch.nn.Module]:
    """A pruned ResNet-20 pick (plan, fine-tuned-like weights, buffers, manifest) and the network itself."""
    base = build_model(ModelConfig(name="resnet20", weights=base_weights)).model
    plan, analysis = random_plan(base, seed=seed, drop_p=0.0)
    model = apply_plan(base, plan, torch.zeros(1, *SHAPE), analysis=analysis)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # "fine-tuned": weights.pt is no longer the pruned base's
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen))
    out.mkdir(parents=True)
    torch.save(model.state_dict(), out / "weights.pt")
    (out / "plan.json").write_text(plan.to_json())
    files = ["weights.pt", "plan.json"]
    if write_extra_buffers(model, out / "buffers.pt") is not None:
        files.append("buffers.pt")
    write_manifest(
        out, files=files, input_name="input", input_shape=[1, *SHAPE], mean=[0.5] * 3, std=[0.25] * 3,
        class_names=[str(i) for i in range(10)], target="host-cpu", precision="fp32", expected_latency_ms=None,
        latency_source="estimate", model_name="resnet20",
    )  # fmt: skip
    return out, model.eval()


@pytest.fixture(scope="module")
def pick(pretrained, tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    return _pick(pretrained["resnet20"], tmp_path_factory.mktemp("rebuild") / "pick")


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.randn(16, *SHAPE, generator=torch.Generator().manual_seed(0)))


def test_load_pick_alone_is_the_shipped_network(pick):
    pick_dir, shipped = pick
    # the pruned option-A shortcut's 0/1 embedding is a non-persistent buffer: buffers.pt carries it
    assert (pick_dir / "buffers.pt").is_file()
    torch.manual_seed(
        123
    )  # the architecture is built from a random init: its channel ranking is not the base's
    model = load_pick(pick_dir)
    assert torch.equal(_logits(model), _logits(shipped)) and not model.training
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in shipped.parameters())


def test_buffers_are_what_makes_the_pick_rebuild_alone(pick, tmp_path):
    import shutil

    pick_dir, shipped = pick
    bare = Path(shutil.copytree(pick_dir, tmp_path / "bare"))
    (bare / "buffers.pt").unlink()
    torch.manual_seed(123)
    assert not torch.allclose(_logits(load_pick(bare)), _logits(shipped))


def test_load_pick_on_the_base_weights_needs_no_buffers(pick, pretrained, tmp_path):
    import shutil

    pick_dir, shipped = pick
    bare = Path(shutil.copytree(pick_dir, tmp_path / "bare"))
    (bare / "buffers.pt").unlink()
    (bare / "manifest.json").unlink()  # compile's ship stage rebuilds before the manifest exists
    model = load_pick(bare, model_name="resnet20", num_classes=10, input_shape=SHAPE,
                      base_weights=pretrained["resnet20"])  # fmt: skip
    assert torch.equal(_logits(model), _logits(shipped))


def test_rebuild_on_base_weights_is_apply_plan_bit_for_bit(pick, pretrained):
    from edgeprune.graph import PruningPlan

    pick_dir, _ = pick
    plan = PruningPlan.from_json((pick_dir / "plan.json").read_text())
    model = rebuild("resnet20", 10, input_shape=SHAPE, base_weights=pretrained["resnet20"], plan=plan)
    base = build_model(ModelConfig(name="resnet20", weights=pretrained["resnet20"])).model
    expected = apply_plan(base, plan, torch.zeros(1, *SHAPE)).state_dict()
    got = model.state_dict()
    assert list(got) == list(expected) and all(torch.equal(got[k], expected[k]) for k in got)
    with pytest.raises(ValueError, match="input shape"):
        rebuild("resnet20", 10, plan=plan)


def test_rebuild_of_a_transfer_network_loads_its_weights(tmp_path):
    from edgeprune.models.transfer import TransferNet

    torch.manual_seed(0)
    net = build_model(ModelConfig(name="resnet20", transfer=True, head_hidden=8, num_classes=6)).model
    torch.save(net.state_dict(), tmp_path / "base.pt")
    model = rebuild("transfer:resnet20:8", 6, base_weights=tmp_path / "base.pt")
    assert isinstance(model, TransferNet) and torch.equal(_logits(model), _logits(net))
    assert _logits(model).shape == (16, 6)
    with pytest.raises(ModelLoadError):  # the backbone's own name rebuilds a network these weights do not fit
        rebuild("resnet20", 6, base_weights=tmp_path / "base.pt")


def test_unreadable_files_are_one_line(pick, tmp_path):
    import shutil

    pick_dir, shipped = pick
    bad = Path(shutil.copytree(pick_dir, tmp_path / "bad"))
    (bad / "plan.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot read .*plan.json") as err:
        load_pick(bad)
    assert "\n" not in str(err.value)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(ModelLoadError, match="does not fit"):
        load_buffers(shipped, tmp_path / "wrong.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_buffers(shipped, tmp_path / "garbage.pt")


def test_a_pick_without_a_model_name_is_refused(tmp_path):
    (tmp_path / "weights.pt").write_bytes(b"")
    write_manifest(
        tmp_path, files=["weights.pt"], input_name="input", input_shape=[1, *SHAPE], mean=[0.5] * 3, std=[0.25] * 3,
        class_names=["a", "b"], target="host-cpu", precision="fp32", expected_latency_ms=None,
        latency_source="estimate", model_name=None,
    )  # fmt: skip
    with pytest.raises(ModelLoadError, match="names no model"):
        load_pick(tmp_path)
