"""Search checkpoints as plain JSON, and resume by replay (docs/reference/run-directory.md).

After every generation ``search/checkpoint.json`` is rewritten atomically with the generation counter,
the population (genomes and objectives), the algorithm's RNG state and the history; evaluations are in
``search/cache.jsonl``. Resuming replays the seeded algorithm from the start against the cache (no
candidate is evaluated twice) and checks that the replay reaches the stored population and RNG state
exactly; a checkpoint of another config or edgeprune version is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeprune import __version__
from edgeprune.atomic import write_text_atomic
from edgeprune.errors import SearchError

CHECKPOINT_VERSION = 1


def fingerprint(data: Any) -> str:
    """A stable hash of plain data (the resolved search inputs)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Checkpoint:
    """Everything written after a generation."""

    fingerprint: str
    strategy: str
    generation: int
    n_evals: int
    population_x: list[list[int]]
    population_f: list[list[float]]
    rng_state: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    done: bool = False
    edgeprune_version: str = __version__
    version: int = CHECKPOINT_VERSION


class CheckpointStore:
    """The ``search/`` directory of a run."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / "checkpoint.json"
        self.cache_path = directory / "cache.jsonl"

    def save(self, ckpt: Checkpoint) -> None:
        write_text_atomic(self.path, json.dumps(asdict(ckpt), indent=1, sort_keys=True))

    def load(self, expected_fingerprint: str) -> Checkpoint | None:
        """The last checkpoint, or None if there is none; refuses foreign or malformed ones."""
        if not self.path.exists():
            return None
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SearchError(f"search checkpoint {self.path} is unreadable: {err}") from None
        if not isinstance(raw, dict) or raw.get("version") != CHECKPOINT_VERSION:
            raise SearchError(
                f"search checkpoint {self.path} has an unknown format version {raw.get('version') if isinstance(raw, dict) else '?'}"
            )
        if raw.get("edgeprune_version") != __version__:
            raise SearchError(
                f"search checkpoint {self.path} was written by edgeprune {raw.get('edgeprune_version')}, this is {__version__}"
            )
        if raw.get("fingerprint") != expected_fingerprint:
            raise SearchError(
                f"search checkpoint {self.path} belongs to a different search configuration; start a new run"
            )
        try:
            return Checkpoint(**raw)
        except TypeError as err:
            raise SearchError(f"search checkpoint {self.path} is malformed: {err}") from None
