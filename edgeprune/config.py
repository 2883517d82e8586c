"""Typed, validated, versioned configs.

Every config is a frozen pydantic model derived from :class:`FrozenConfig`: unknown fields are
rejected, values are validated where they enter (CLI, YAML), and the resolved config is written back
out as YAML. Stages define their own configs next to their code by subclassing :class:`FrozenConfig`;
this module holds the base and the configs the first stage (load) needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edgeprune.errors import ConfigError, EdgepruneError

CONFIG_VERSION = 1


def describe_validation_error(err: ValidationError, where: str) -> str:
    """One line naming the first invalid field of a pydantic error."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ())) or "(root)"
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")  # our validators' own words
    return f"{where}: field '{loc}': {msg}"


def read_document(path: str | Path, what: str, error: type[EdgepruneError] = ConfigError) -> Any:
    """The data of a JSON (``.json``) or YAML (anything else) file; a missing, unreadable or malformed
    file is one line of ``error`` naming ``what`` and the path."""
    path = Path(path)
    fmt = "JSON" if path.suffix == ".json" else "YAML"
    try:
        text = path.read_text()
        return json.loads(text) if fmt == "JSON" else yaml.safe_load(text)
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise error(f"{what} {path} is not readable {fmt}: {err}".splitlines()[0]) from None


class FrozenConfig(BaseModel):
    """Base of every edgeprune config: frozen, strict about unknown fields, YAML round-trip.

    A config with a ``version`` field (its default is the version this edgeprune writes) refuses a
    document of any other version: a newer edgeprune's file is not half-understood.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("version", check_fields=False)
    @classmethod
    def _known_version(cls, v: Any) -> Any:
        current = cls.model_fields["version"].default
        if isinstance(v, int) and v > current:
            raise ValueError(f"version {v} is newer than this edgeprune reads ({current}): upgrade edgeprune")
        if v != current:
            raise ValueError(f"version {v} is unknown: this edgeprune reads version {current}")
        return v

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str = "config") -> Self:
        """Validate ``data``; raise :class:`ConfigError` with one line on failure."""
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ConfigError(describe_validation_error(err, where)) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> Self:
        """Load and validate a YAML file."""
        data = read_document(path, "config file")
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping at top level")
        return cls.from_mapping(data, where=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-serialisable data."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The resolved config as YAML (stable key order)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


class ModelConfig(FrozenConfig):
    """Which network to compress.

    ``name`` is a built-in family (``resnet56``), ``torchvision:NAME`` or ``package.module:factory``.
    """

    name: str = "digits-resnet"
    weights: Path | None = None
    num_classes: int | None = Field(default=None, ge=2)
    input_shape: tuple[int, int, int] | None = None  # C, H, W; None: the family's / data's default
    # transfer mode (edgeprune.models.transfer): the classifier is replaced by a Linear-ReLU-Linear head
    # of ``head_hidden`` neurons; ``backbone_weights`` are a pretrained network's (old classifier ignored),
    # ``weights`` (when given) the full transfer network's, which then take precedence.
    transfer: bool = False
    head_hidden: int = Field(default=64, ge=1)
    backbone_weights: Path | None = None

    @field_validator("name")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("model name is empty")
        return v.strip()


class DataConfig(FrozenConfig):
    """Where the data comes from and how it is prepared.

    ``source`` is ``digits`` (scikit-learn's built-in 8x8 digits, no download), a ``.npz`` file with
    ``x`` (N,H,W,C uint8) and ``y``, a directory holding ``train*.npz`` and ``test*.npz`` (all of each
    are read, in name order, and joined), or an image folder (one sub-folder per class, optionally
    under ``train/`` and ``test/``).

    ``extra_train`` lists more training data appended to the source's training pool (before the
    seeded train / validation split): ``.npz`` files, or directories whose ``train*.npz`` are all
    read. Every file must match the source's image size, channels and class names. Empty (the
    default): the pool is the source's own, exactly as without the field.
    """

    source: str = "digits"
    extra_train: tuple[str, ...] = ()
    mean: tuple[float, ...] | None = None  # per channel, on 0..1 pixels; None: the source's default
    std: tuple[float, ...] | None = None
    input_size: tuple[int, int] | None = None  # H, W to resize to; None: keep
    val_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)  # used only when no test split exists
    calib_size: int = Field(default=512, ge=1)
    seed: int = 0

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is not None and any(s <= 0 for s in v):
            raise ValueError("std must be positive")
        return v

    @field_validator("extra_train", mode="before")
    @classmethod
    def _paths(cls, v: Any) -> Any:
        if isinstance(v, (str, Path)):  # one path in a YAML file: a list of one
            v = [v]
        if isinstance(v, (list, tuple)):
            v = [str(p) for p in v]
            if any(not p.strip() for p in v):
                raise ValueError("extra_train holds an empty path")
        return v
