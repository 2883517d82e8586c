"""Client side of ``edgeprune agent``: a :class:`~edgeprune.latency.profiler.KernelTimer` over HTTP."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

from edgeprune.errors import ProfileError, RuntimeUnavailableError
from edgeprune.latency.timing import SPINNING_DEFAULT, threading_fields


class RemoteTimer:
    """Times models on a remote agent exactly as the local profiler would on the device."""

    def __init__(
        self,
        url: str,
        token: str | None,
        runtime: str,
        precision: str,
        threads: int,
        warmup: int = 30,
        runs: int = 100,
        timeout_s: float = 600.0,
        spinning: bool = SPINNING_DEFAULT,
    ):
        if not token:
            raise ProfileError("a remote agent needs a token: pass --token or set EDGEPRUNE_AGENT_TOKEN")
        self.url = url.rstrip("/")
        self.token = token
        self.runtime, self.precision, self.threads = runtime, precision, threads
        self.spinning = spinning
        self.warmup, self.runs, self.timeout_s = warmup, runs, timeout_s

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            try:
                detail = json.loads(err.read()).get("error", "")
            except ValueError:
                detail = ""
            if err.code == 401:
                raise ProfileError(f"agent {self.url} rejected the token (401)") from None
            raise ProfileError(f"agent {self.url} answered {err.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise RuntimeUnavailableError(f"cannot reach agent {self.url}: {reason}") from None

    def info(self) -> dict[str, Any]:
        info = self._call("GET", "/v1/info")
        return {
            **info,
            "runtime": self.runtime,
            **threading_fields(self.threads, self.spinning),
            "via": f"agent {self.url}",
        }

    def time_models_ms(self, models: list[bytes]) -> list[list[float]]:
        payload = {
            "models": [base64.b64encode(m).decode() for m in models],
            "runtime": self.runtime,
            "precision": self.precision,
            "threads": self.threads,
            "spinning": self.spinning,
            "warmup": self.warmup,
            "runs": self.runs,
        }
        return self._call("POST", "/v1/benchmark", payload)["samples_ms"]
