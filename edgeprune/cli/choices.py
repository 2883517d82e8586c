"""Click choices that come from a registry (:class:`edgeprune.registry.Registry`).

The names are read when click first needs them (a value to check, ``--help``), not when the command is
defined: a registry's built-ins may be heavy to import, and ``edgeprune --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from edgeprune.registry import Registry


class RegistryChoice(click.Choice[str]):
    """``click.Choice`` over the names registered in ``registry``, resolved lazily."""

    def __init__(self, registry: Registry[Any]) -> None:
        self.registry = registry
        super().__init__((), case_sensitive=True)

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:
        """The registered names (sorted), read when click asks."""
        return tuple(self.registry.names())

    @choices.setter
    def choices(self, _value: Sequence[str]) -> None:
        """Ignored: the choices are always the registry's names."""

    def __repr__(self) -> str:
        return f"RegistryChoice({self.registry.kind!r})"


def comma_separated(registry: Registry[Any]) -> Any:
    """A click callback turning ``a,b,c`` into a tuple of names registered in ``registry`` (None stays None)."""

    def parse(_ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
        if not value:
            return None
        names = tuple(n.strip() for n in value.split(","))
        for name in names:
            if name not in registry:
                raise click.BadParameter(registry.unknown_message(name), param=param)
        return names

    return parse
