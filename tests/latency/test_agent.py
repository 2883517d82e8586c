from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from edgeprune.errors import ProfileError
from edgeprune.latency.agent import AgentServer, AgentSettings
from edgeprune.latency.agent_client import RemoteTimer
from edgeprune.latency.kernel_models import empty_model
from edgeprune.latency.kernels import KernelKey
from edgeprune.latency.profiler import LocalOrtTimer, profile_kernels

TOKEN = "s3cret-token"


@pytest.fixture
def agent():
    server = AgentServer(AgentSettings(token=TOKEN, port=0, max_upload_bytes=2_000_000))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _post(url, body, token=TOKEN, ctype="application/octet-stream"):
    req = urllib.request.Request(
        url + "/v1/benchmark?runs=5&warmup=1",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": ctype},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_benchmark_auth_caps_and_keeps_serving(agent):
    url = agent.url
    status, body = _post(url, empty_model())
    assert status == 200 and body["stats"][0]["count"] == 5 and body["runtime"] == "onnxruntime-cpu"
    assert "device" in body and body["runtime_version"]
    assert _post(url, empty_model(), token="wrong")[0] == 401
    assert _post(url, b"\x08" * 3_000_000)[0] == 413
    status, body = _post(url, b"not an onnx model")
    assert status == 400 and "not a valid ONNX model" in body["error"]
    assert _post(url, b"{", ctype="application/json")[0] == 400
    assert _post(url, empty_model())[0] == 200  # still serving after the bad requests


def test_one_benchmark_at_a_time(agent):
    agent.lock.acquire()  # a benchmark in progress
    try:
        status, body = _post(agent.url, empty_model())
    finally:
        agent.lock.release()
    assert status == 503 and "busy" in body["error"]


def test_remote_profile_matches_local(agent, tmp_path):
    keys = [KernelKey("cifar_block", 16, 16, 32, m, 32) for m in (16, 64)]
    remote = RemoteTimer(agent.url, TOKEN, "onnxruntime-cpu", "fp32", 1, warmup=10, runs=60)
    local = LocalOrtTimer(1, warmup=10, runs=60)
    t_remote, _ = profile_kernels(keys, tmp_path / "remote.json", remote, passes=2)
    t_local, _ = profile_kernels(keys, tmp_path / "local.json", local, passes=2)
    assert t_remote.entries.keys() == t_local.entries.keys()
    assert "agent" in t_remote.provenance["via"]
    for k in keys:  # same table within the noise of a shared 2-core machine
        a, b = t_remote.get(k).median_ms, t_local.get(k).median_ms
        assert 0.5 < a / b < 2.0
    assert t_remote.get(keys[0]).median_ms < t_remote.get(keys[1]).median_ms


def test_wrong_token_is_a_clear_error(agent):
    with pytest.raises(ProfileError, match="rejected the token"):
        RemoteTimer(agent.url, "nope", "onnxruntime-cpu", "fp32", 1).info()


def test_the_agent_runs_threads_as_asked(agent):
    import base64

    body = json.dumps(
        {
            "models": [base64.b64encode(empty_model()).decode()],
            "threads": 2,
            "spinning": True,
            "runs": 3,
            "warmup": 1,
        }
    ).encode()
    status, answer = _post(agent.url, body, ctype="application/json")
    assert status == 200 and answer["threads"] == 2 and answer["spinning"] is True
    status, answer = _post(agent.url, empty_model())  # a client from before spinning was a setting: off
    assert status == 200 and answer["spinning"] is False
    req = urllib.request.Request(
        agent.url + "/v1/benchmark?spinning=sometimes", data=empty_model(), method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/octet-stream"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 400 and "spinning must be true or false" in json.loads(err.value.read())["error"]
    remote = RemoteTimer(agent.url, TOKEN, "onnxruntime-cpu", "fp32", 2, warmup=1, runs=3, spinning=False)
    assert remote.info()["spinning"] is False
