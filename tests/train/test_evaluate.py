"""Top-1 accuracy of the pretrained CIFAR ResNets on the real (JPEG) CIFAR-10 test set."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeprune.config import ModelConfig
from edgeprune.errors import DataError
from edgeprune.models import build_model
from edgeprune.train import evaluate_accuracy


def _pretrained(name, pretrained):
    return build_model(ModelConfig(name=name, weights=pretrained[name])).model


def test_resnet20_on_a_tenth_of_the_test_set(cifar_test_npz, pretrained, cifar_loader):
    x, y = cifar_loader(cifar_test_npz, step=10)  # 1000 images, 100 per class
    assert round(evaluate_accuracy(_pretrained("resnet20", pretrained), x, y) * len(x)) == 795


@pytest.mark.slow
@pytest.mark.parametrize(("name", "expected"), [("resnet20", 0.8103), ("resnet56", 0.8320)])
def test_pretrained_accuracy_on_the_full_test_set(name, expected, cifar_test_npz, pretrained, cifar_loader):
    x, y = cifar_loader(cifar_test_npz)
    assert evaluate_accuracy(_pretrained(name, pretrained), x, y) == pytest.approx(expected, abs=0.001)


def test_accuracy_is_exact_and_restores_the_mode():
    model = nn.Linear(2, 3)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3, 2))
        model.bias.zero_()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 2.0]])
    model.train()
    assert evaluate_accuracy(model, x, torch.tensor([0, 1, 1, 1]), batch_size=3) == 0.75
    assert model.training


def test_bad_inputs_are_data_errors():
    model = nn.Linear(2, 3)
    with pytest.raises(DataError, match="labels"):
        evaluate_accuracy(model, torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(DataError, match="empty"):
        evaluate_accuracy(model, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(DataError, match="3 classes"):
        evaluate_accuracy(model, torch.zeros(2, 2), torch.tensor([0, 7]))
