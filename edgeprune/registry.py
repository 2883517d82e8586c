"""One small registry for edgeprune's open sets: runtimes, strategies, executors, model families, objectives.

A :class:`Registry` maps names to entries. Registering a name twice is refused (a programming error,
``ValueError``); :meth:`Registry.names` lists what is registered, sorted, which is where the CLI's choices
and the configs' validators get their names; an unknown name is the registry's own error class with a
message naming every known one.

Built-in entries that live in heavy or higher modules are *not* imported by the module that owns the
registry: the registry is given their module paths (``builtins``) and imports them on its first lookup.
The implementations import the registry to register themselves, never the other way round, so there is
no import circle and importing the registry stays cheap.

This module imports nothing from edgeprune, so every layer may use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar, overload

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (``"runtime"``, ``"search strategy"``...), registered once each.

    ``error`` is the exception class :meth:`get` raises for an unknown name (an ``EdgepruneError``
    subclass, so the CLI prints it as one line); ``builtins`` are the modules whose import registers the
    built-in entries, imported on the first lookup (:meth:`get`, :meth:`names`, ``in``...).
    """

    def __init__(self, kind: str, *, error: type[Exception], builtins: Iterable[str] = ()) -> None:
        self.kind = kind
        self.error = error
        self.builtins = tuple(builtins)
        self._entries: dict[str, T] = {}
        self._loaded = not self.builtins

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, item: T) -> T: ...

    def register(self, name: str, item: T | None = None) -> T | Callable[[T], T]:
        """Register ``item`` under ``name`` and return it; without ``item``, a decorator that does.

        A name already registered is refused with ``ValueError``.
        """
        if item is None:

            def deco(entry: T) -> T:
                return self._add(name, entry)

            return deco
        return self._add(name, item)

    def _add(self, name: str, item: T) -> T:
        if not name or name != name.strip():
            raise ValueError(f"{self.kind} name {name!r} must be non-empty, without surrounding spaces")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = item
        return item

    def load_builtins(self) -> None:
        """Import the built-in modules (once); each registers its entries as it is imported."""
        if self._loaded:
            return
        self._loaded = True  # before importing: a lookup made while they import sees what is there
        try:
            for module in self.builtins:
                importlib.import_module(module)
        except BaseException:
            self._loaded = False  # a failed import is raised again on the next lookup, not hidden
            raise

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self.load_builtins()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs, sorted by name."""
        self.load_builtins()
        return sorted(self._entries.items(), key=lambda kv: kv[0])

    def __contains__(self, name: object) -> bool:
        self.load_builtins()
        return name in self._entries

    def unknown_message(self, name: str) -> str:
        """The one line saying ``name`` is not registered, with the known names."""
        return f"unknown {self.kind} {name!r} (known: {', '.join(self.names()) or 'none'})"

    def get(self, name: str) -> T:
        """The entry registered as ``name``; an unknown name raises the registry's error class."""
        self.load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(self.unknown_message(name)) from None

    def validate(self, name: str) -> str:
        """``name`` if registered, else ``ValueError`` with :meth:`unknown_message` (for pydantic validators)."""
        if name not in self:
            raise ValueError(self.unknown_message(name))
        return name

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"
