"""Reading weights is total (issue 15): whatever bytes a weights file holds, ``read_state_dict`` returns
a state dict or raises one-line ``ModelLoadError`` naming the file; nothing else escapes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeprune.config import ModelConfig
from edgeprune.errors import ModelLoadError
from edgeprune.models import build_model, read_state_dict
from edgeprune.models.weights import load_state_into

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLIPS = settings(PROPERTY, max_examples=80)  # a flip that loads costs a full read and load


@pytest.fixture(scope="module")
def originals(pretrained, tmp_path_factory) -> dict[str, bytes]:
    """The real resnet20 weights in torch's legacy format (as published) and re-saved as a zip."""
    legacy = pretrained["resnet20"].read_bytes()
    buf = io.BytesIO()
    torch.save(read_state_dict(pretrained["resnet20"]), buf)
    return {"legacy": legacy, "zip": buf.getvalue()}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weights") / "w.th"


_RESNET20: list[torch.nn.Module] = []


def _outcome(path: Path) -> str:
    """Read ``path`` and, if that works, load it into resnet20: ``ok`` or ``refused``; anything but
    ModelLoadError fails the test."""
    if not _RESNET20:
        _RESNET20.append(build_model(ModelConfig(name="resnet20")).model)
    try:
        state = read_state_dict(path)
        load_state_into(_RESNET20[0], state, path)
    except ModelLoadError as err:
        message = str(err)
        assert "\n" not in message and str(path) in message, message
        return "refused"
    return "ok"


@pytest.mark.parametrize("layout", ["legacy", "zip"])
@PROPERTY
@given(fraction=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_any_truncation_is_a_model_load_error(originals, scratch, layout, fraction):
    data = originals[layout]
    scratch.write_bytes(data[: int(fraction * len(data))])
    assert _outcome(scratch) == "refused"


@pytest.mark.parametrize("layout", ["legacy", "zip"])
@FLIPS
@given(
    where=st.one_of(st.floats(0.0, 0.04), st.floats(0.0, 1.0, exclude_max=True), st.floats(0.99, 1.0, exclude_max=True)),
    bits=st.lists(st.integers(0, 7), min_size=1, max_size=3),
)  # fmt: skip
def test_flipped_bytes_load_or_are_a_model_load_error(originals, scratch, layout, where, bits):
    """Flips land where the file's structure is (its head; a zip's directory at its end) and anywhere:
    a flip in a tensor's bytes may load, and then the state dict still loads into the model."""
    data = bytearray(originals[layout])
    offset = min(len(data) - 1, int(where * len(data)))
    for bit in bits:
        data[offset] ^= 1 << bit
    scratch.write_bytes(bytes(data))
    assert _outcome(scratch) in ("ok", "refused")


@PROPERTY
@given(blob=st.binary(min_size=0, max_size=4096))
def test_arbitrary_bytes_are_a_model_load_error(scratch, blob):
    scratch.write_bytes(blob)
    assert _outcome(scratch) == "refused"


def test_the_issue_s_truncation(originals, scratch):
    """9,000 bytes of resnet20-12fca82f.th printed a 49-line traceback (struct.error)."""
    scratch.write_bytes(originals["legacy"][:9000])
    with pytest.raises(ModelLoadError, match="corrupt or truncated: it ends early"):
        read_state_dict(scratch)


def test_interrupts_are_not_swallowed(tmp_path, monkeypatch):
    path = tmp_path / "w.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    for exc in (KeyboardInterrupt, SystemExit):

        def interrupted(*_args, exc=exc, **_kwargs):
            raise exc

        monkeypatch.setattr(torch, "load", interrupted)
        with pytest.raises(exc):
            read_state_dict(path)


def test_unreadable_file_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "w.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)

    def denied(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(ModelLoadError, match="cannot be read: Permission denied"):
        read_state_dict(path)


def test_non_tensor_entries_and_non_string_keys(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"a": torch.zeros(1), "b": 3}, path)
    with pytest.raises(ModelLoadError, match="'b' is not a tensor"):
        read_state_dict(path)
    torch.save({1: torch.zeros(1)}, path)
    with pytest.raises(ModelLoadError, match="not a string"):
        read_state_dict(path)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ModelLoadError, match="holds no state dict"):
        read_state_dict(path)
