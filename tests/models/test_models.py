import pickle

import pytest
import torch

from edgeprune.config import ModelConfig
from edgeprune.errors import ConfigError, ModelLoadError
from edgeprune.models import FAMILIES, build_model, register_family
from edgeprune.models.cifar_resnet import EmbedShortcut


def test_families_cover_the_cifar_resnets():
    assert FAMILIES.names() == ["digits-resnet", "resnet110", "resnet20", "resnet32", "resnet44", "resnet56"]
    with pytest.raises(ValueError, match="model family 'resnet20' is already registered"):
        register_family(FAMILIES.get("resnet20"))
    params = {
        n: sum(p.numel() for p in build_model(ModelConfig(name=n)).model.parameters())
        for n in ("resnet20", "resnet56")
    }
    assert params == {"resnet20": 269722, "resnet56": 853018}


def test_embed_shortcut_equals_option_a_padding():
    x = torch.randn(2, 16, 8, 8)
    pad = torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 8, 8))
    assert torch.equal(EmbedShortcut(16, 32, 2)(x), pad)
    assert "embed" not in dict(EmbedShortcut(16, 32, 2).state_dict())


def test_torchvision_by_name_with_class_count():
    m = build_model(ModelConfig(name="torchvision:mobilenet_v2", num_classes=7))
    assert m.model(torch.randn(1, 3, 32, 32)).shape == (1, 7)


def test_user_factory(tmp_path, monkeypatch):
    (tmp_path / "mynet.py").write_text(
        "import torch\ndef make(num_classes=3):\n    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, num_classes))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    m = build_model(ModelConfig(name="mynet:make", num_classes=5))
    assert m.num_classes == 5
    path = tmp_path / "w.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in m.model.state_dict().items()}}, path)
    again = build_model(ModelConfig(name="mynet:make", num_classes=5, weights=path))
    assert torch.equal(again.model[1].weight, m.model[1].weight)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_unsafe_pickle_is_refused_not_run(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _Evil()}, path)
    with pytest.raises(ModelLoadError, match="arbitrary pickled code"):
        build_model(ModelConfig(name="resnet20", weights=path))
    assert "pwned" not in capsys.readouterr().out
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ModelLoadError):
        build_model(ModelConfig(name="resnet20", weights=raw))


def test_mismatches_name_the_parameter(tmp_path, pretrained):
    with pytest.raises(
        ModelLoadError,
        match="'linear.weight': weights file has shape \\(10, 64\\), model expects \\(5, 64\\)",
    ):
        build_model(ModelConfig(name="resnet20", num_classes=5, weights=pretrained["resnet20"]))
    with pytest.raises(ModelLoadError, match="has no parameter 'layer1.3.conv1.weight'"):
        build_model(ModelConfig(name="resnet56", weights=pretrained["resnet20"]))
    trunc = tmp_path / "t.th"
    trunc.write_bytes(pretrained["resnet20"].read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        build_model(ModelConfig(name="resnet20", weights=trunc))
    with pytest.raises(ConfigError, match="unknown model"):
        build_model(ModelConfig(name="resnet21"))
