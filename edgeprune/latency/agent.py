"""``edgeprune agent``: a small HTTP server on the device that benchmarks uploaded ONNX models.

API (JSON answers; every route but ``/v1/health`` needs ``Authorization: Bearer <token>``):

* ``GET /v1/health`` — ``{"ok": true}``;
* ``GET /v1/info`` — device and runtime description;
* ``POST /v1/benchmark`` — either JSON ``{"models": [base64 ONNX, ...], "runtime", "precision",
  "threads", "spinning", "warmup", "runs"}`` (models timed interleaved, as the profiler needs; ``spinning``
  defaults to false, what agents did before it was a setting), or one raw ONNX
  body (``Content-Type: application/octet-stream``) with the same settings as query parameters.
  Answers ``{"samples_ms": [[...], ...], "stats": [{median_ms, p10_ms, p90_ms, count}, ...], ...info}``.

Safety: the token is compared in constant time (``hmac.compare_digest``); uploads above the cap get
413 before the body is read; one benchmark runs at a time (concurrent runs would corrupt each other's
timings) — a second request waits up to ``busy_wait_s`` and then gets 503; a malformed model gets 400
and the agent keeps serving. It binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from edgeprune.errors import ConfigError, EdgepruneError

TOKEN_ENV = "EDGEPRUNE_AGENT_TOKEN"
MAX_RUNS = 10_000
MAX_MODELS = 16
_DRAIN_LIMIT_BYTES = 1 << 30


@dataclass(frozen=True)
class AgentSettings:
    """How the agent serves."""

    token: str
    host: str = "127.0.0.1"
    port: int = 8765
    max_upload_bytes: int = 64 * 1024 * 1024
    busy_wait_s: float = 0.0


class _BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _int_field(d: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    v = d.get(name, default)
    try:
        v = int(v[0] if isinstance(v, list) else v)
    except (TypeError, ValueError):
        raise _BadRequest(400, f"{name} must be an integer") from None
    if not lo <= v <= hi:
        raise _BadRequest(400, f"{name} must be in [{lo}, {hi}]")
    return v


def _bool_field(d: dict[str, Any], name: str, default: bool) -> bool:
    v = d.get(name, default)
    v = v[0] if isinstance(v, list) else v
    if isinstance(v, bool):
        return v
    if str(v).lower() in ("1", "true"):
        return True
    if str(v).lower() in ("0", "false"):
        return False
    raise _BadRequest(400, f"{name} must be true or false")


def _check_onnx(model: bytes, i: int) -> None:
    import onnx

    try:
        onnx.checker.check_model(onnx.load_from_string(model))
    except Exception as err:  # onnx raises several types for malformed protobufs
        raise _BadRequest(400, f"model {i} is not a valid ONNX model: {err}".splitlines()[0][:300]) from None


def benchmark(
    models: list[bytes],
    runtime: str,
    precision: str,
    threads: int,
    warmup: int,
    runs: int,
    spinning: bool = False,
) -> list[list[float]]:
    """Time ``models`` with the named runtime on this device (interleaved)."""
    if runtime == "onnxruntime-cpu":
        if precision != "fp32":
            raise _BadRequest(
                400, "onnxruntime-cpu benchmarks are fp32 (quantized models carry their own precision)"
            )
        from edgeprune.latency.timing import time_models_ms

        return time_models_ms(models, threads, warmup, runs, spinning=spinning)
    if runtime == "tensorrt":
        from edgeprune.latency.tensorrt_profiler import TensorRTTimer

        return TensorRTTimer(precision, warmup, runs).time_models_ms(models)
    raise _BadRequest(400, f"unknown runtime {runtime!r}")


def device_info() -> dict[str, Any]:
    from edgeprune.latency.timing import runtime_info

    info = runtime_info()
    try:
        import tensorrt

        info["tensorrt_version"] = tensorrt.__version__
    except ImportError:
        info["tensorrt_version"] = None
    return info


class AgentHandler(BaseHTTPRequestHandler):
    """One request; the server object carries settings and the benchmark lock."""

    server: AgentServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default; the CLI prints a banner
        pass

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        got = self.headers.get("Authorization", "")
        want = f"Bearer {self.server.settings.token}"
        return hmac.compare_digest(got.encode(), want.encode())

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        if path == "/v1/health":
            self._send(200, {"ok": True})
            return
        if not self._authorized():
            self._send(401, {"error": "missing or wrong token"})
            return
        if path == "/v1/info":
            self._send(200, self.server.info)
            return
        self._send(404, {"error": f"no route {path}"})

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            raise _BadRequest(411, "Content-Length is required")
        try:
            n = int(length)
        except ValueError:
            raise _BadRequest(400, "bad Content-Length") from None
        if n > self.server.settings.max_upload_bytes:
            self._drain(n)
            raise _BadRequest(
                413, f"upload of {n} bytes exceeds the cap of {self.server.settings.max_upload_bytes} bytes"
            )
        return self.rfile.read(n)

    def _drain(self, n: int) -> None:
        """Read and drop an oversized body in chunks (bounded memory) so the client sees our 413."""
        left = min(n, _DRAIN_LIMIT_BYTES)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)

    def _parse(self, body: bytes, query: dict[str, Any]) -> tuple[list[bytes], dict[str, Any]]:
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            try:
                req = json.loads(body)
                models = [base64.b64decode(m, validate=True) for m in req["models"]]
            except (ValueError, KeyError, TypeError, binascii.Error):
                raise _BadRequest(
                    400, "body must be JSON with a 'models' list of base64 ONNX models"
                ) from None
            if not isinstance(req, dict):
                raise _BadRequest(400, "body must be a JSON object")
            opts = req
        else:
            models, opts = [body], query
        if not 1 <= len(models) <= MAX_MODELS:
            raise _BadRequest(400, f"send 1 to {MAX_MODELS} models")
        return models, opts

    def do_POST(self) -> None:
        url = urlparse(self.path)
        if not self._authorized():
            self._send(401, {"error": "missing or wrong token"})
            return
        if url.path != "/v1/benchmark":
            self._send(404, {"error": f"no route {url.path}"})
            return
        try:
            body = self._read_body()
            models, opts = self._parse(body, parse_qs(url.query))

            def pick(name: str, default: str) -> str:
                v = opts.get(name, default)
                return str(v[0] if isinstance(v, list) else v)

            runtime, precision = pick("runtime", "onnxruntime-cpu"), pick("precision", "fp32")
            threads = _int_field(opts, "threads", 1, 1, 256)
            spinning = _bool_field(opts, "spinning", False)
            warmup = _int_field(opts, "warmup", 30, 0, MAX_RUNS)
            runs = _int_field(opts, "runs", 100, 1, MAX_RUNS)
            for i, m in enumerate(models):
                _check_onnx(m, i)
        except _BadRequest as err:
            self._send(err.status, {"error": str(err)})
            return
        wait_s = self.server.settings.busy_wait_s
        acquired = (
            self.server.lock.acquire(timeout=wait_s)
            if wait_s > 0
            else self.server.lock.acquire(blocking=False)
        )
        if not acquired:
            self._send(503, {"error": "busy: another benchmark is running; retry later"})
            return
        try:
            samples = benchmark(models, runtime, precision, threads, warmup, runs, spinning)
        except _BadRequest as err:
            self._send(err.status, {"error": str(err)})
            return
        except EdgepruneError as err:
            self._send(400, {"error": str(err)})
            return
        finally:
            self.server.lock.release()
        from edgeprune.latency.timing import summarize_ms

        self._send(
            200,
            {
                **self.server.info,  # the device; then what this benchmark ran with
                "samples_ms": samples,
                "stats": [
                    dict(zip(("median_ms", "p10_ms", "p90_ms", "count"), summarize_ms(s), strict=True))
                    for s in samples
                ],
                "runtime": runtime,
                "precision": precision,
                "threads": threads,
                "spinning": spinning,
                "warmup": warmup,
                "runs": runs,
            },
        )


class AgentServer(ThreadingHTTPServer):
    """The HTTP server with its settings, device info and the one-benchmark-at-a-time lock."""

    daemon_threads = True

    def __init__(self, settings: AgentSettings):
        if not settings.token:
            raise ConfigError(f"the agent needs a token: pass --token or set {TOKEN_ENV}")
        self.settings = settings
        self.lock = threading.Lock()
        self.info = device_info()
        try:
            super().__init__((settings.host, settings.port), AgentHandler)
        except OSError as err:
            raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: {err.strerror}") from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"
