"""No import circles inside edgeprune: a module never (directly or indirectly) imports itself.

The graph is grimp's (the one import-linter checks), so imports inside functions count as at the top of
a file. Registries break the old circles: a registry's owner names its built-in implementations by
module path and imports them on first lookup (:mod:`edgeprune.registry`); the implementations import
the owner, never the other way round.
"""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the dev extra)")


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph`` (iterative, so deep graphs do not recurse)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def import_cycles(package: str) -> list[list[str]]:
    """Groups of ``package``'s modules that import each other in a circle (empty when there is none)."""
    g = grimp.build_graph(package)
    graph = {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}
    return [c for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph[c[0]]]


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "d"}, "e": set()}
    found = [c for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph[c[0]]]
    assert sorted(found) == [["a", "b", "c"], ["d"]]


def test_edgeprune_has_no_import_cycles() -> None:
    assert import_cycles("edgeprune") == []


def test_the_registry_module_imports_nothing_from_edgeprune() -> None:
    """edgeprune.registry is used by every layer, so it must sit below all of them."""
    g = grimp.build_graph("edgeprune")
    assert g.find_modules_directly_imported_by("edgeprune.registry") == set()
