"""Every user-facing failure is an :class:`EdgepruneError`.

The CLI turns one of these into a single line on stderr and the exit code of its class; anything else
escaping to the CLI is a bug in edgeprune.
"""

from __future__ import annotations


class EdgepruneError(Exception):
    """A failure a user can act on; ``str(err)`` is the one line we print."""

    exit_code = 1


class ConfigError(EdgepruneError):
    """A config, flag or option combination is invalid."""

    exit_code = 2


class ModelLoadError(EdgepruneError):
    """A model or its weights cannot be built or loaded (missing, corrupt, unsafe, mismatched)."""

    exit_code = 3


class UntrainedModelError(ModelLoadError):
    """A network trained from scratch ended no better than chance: not a model worth compressing."""


class DataError(EdgepruneError):
    """A dataset is missing, malformed or inconsistent with the model."""

    exit_code = 4


class UnsupportedModelError(EdgepruneError):
    """A model contains a layer or pattern edgeprune cannot prune or trace correctly."""

    exit_code = 5


class ProfileError(EdgepruneError):
    """A hardware profile or latency table is malformed or does not cover what was asked."""

    exit_code = 6


class RuntimeUnavailableError(EdgepruneError):
    """A runtime (TensorRT, CUDA, Ray, ...) is not installed or not usable on this machine."""

    exit_code = 7


class SearchError(EdgepruneError):
    """The search cannot run or resume (impossible budget, foreign checkpoint, ...)."""

    exit_code = 8


class ExportError(EdgepruneError):
    """A model cannot be exported, quantized or written as an artefact."""

    exit_code = 9


class VerificationError(EdgepruneError):
    """A shipped artefact failed a check (parity, accuracy, checksum, latency)."""

    exit_code = 10


class RunDirError(EdgepruneError):
    """A run directory is missing, foreign, or would be overwritten."""

    exit_code = 11
