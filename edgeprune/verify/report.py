"""The result of verifying a pick, written as ``verify.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.atomic import write_text_atomic
from edgeprune.verify.checks import Check

VERIFY_NAME = "verify.json"
VERIFY_VERSION = 1


@dataclass
class VerifyReport:
    """Sections of ``verify.json`` (see docs/reference/schemas.md) and the verdict."""

    pick_dir: Path
    target: str
    precision: str
    thresholds: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    sections: dict[str, Any] = field(
        default_factory=dict
    )  # parity_fp32, parity_int8, accuracy, latency, environment
    error: str | None = None  # an integrity failure that stopped verification

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verify_version": VERIFY_VERSION,
            "target": self.target,
            "precision": self.precision,
            **self.sections,
            "thresholds": self.thresholds,
            "checks": [c.to_dict() for c in self.checks],
            "error": self.error,
            "passed": self.passed,
        }

    def write(self) -> Path:
        """Write ``verify.json`` into the pick directory (atomically)."""
        return write_text_atomic(
            Path(self.pick_dir) / VERIFY_NAME, json.dumps(self.to_dict(), indent=1) + "\n"
        )

    def summary_line(self) -> str:
        """One line: verdict and the failed checks."""
        if self.error:
            return f"verify FAILED: {self.error}"
        if self.passed:
            return f"verify passed: {len(self.checks)} checks ({self.target}, {self.precision})"
        names = ", ".join(
            f"{c.name}={c.value:.4g} (limit {c.op} {c.limit})" for c in self.failed if c.value is not None
        )
        return f"verify FAILED: {names}"
