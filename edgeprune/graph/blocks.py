"""Droppable residual blocks: modules computing ``act(f(x) + x)`` with an identity shortcut.

Found from the autograd graph of one forward pass: a module is a droppable block when its output,
through at most a few element-wise activations, is an addition one of whose operands is exactly the
module's input tensor. Replacing such a block by ``nn.Identity`` keeps every shape (the "depth genes"
of the search); blocks with a projection or a padded shortcut change the shape and are not droppable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgeprune.graph.tracing import forward_with_hooks

_PASS_THROUGH = {"ReluBackward0", "HardtanhBackward0", "SiluBackward0", "GeluBackward0", "HardswishBackward0"}
_ADDS = {"AddBackward0", "AddBackward1"}
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _is_identity_residual(out_fn: Any, in_fn: Any) -> bool:
    fn = out_fn
    for _ in range(4):
        if fn is None or not hasattr(fn, "name"):
            return False
        name = fn.name()
        if name in _ADDS:
            return any(nxt is in_fn for nxt, _ in fn.next_functions)
        if name not in _PASS_THROUGH:
            return False
        fn = fn.next_functions[0][0]
    return False


def find_residual_blocks(model: nn.Module, example_input: torch.Tensor) -> list[str]:
    """Names of the outermost identity-shortcut residual blocks of ``model``, in module order."""
    candidates = {
        name: m
        for name, m in model.named_modules()
        if name and not isinstance(m, _CONTAINERS) and _has_parameters(m) and len(list(m.children())) > 0
    }
    seen_in: dict[str, Any] = {}
    seen_out: dict[str, Any] = {}
    calls: dict[str, int] = {}
    hooks = []

    def pre_hook(name: str):
        def fn(module: nn.Module, args: tuple[Any, ...]) -> None:
            calls[name] = calls.get(name, 0) + 1
            x = args[0] if args and isinstance(args[0], torch.Tensor) else None
            seen_in[name] = None if x is None else x.grad_fn

        return fn

    def post_hook(name: str):
        def fn(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            ok = isinstance(out, torch.Tensor) and len(args) == 1 and isinstance(args[0], torch.Tensor)
            ok = ok and tuple(out.shape) == tuple(args[0].shape)
            seen_out[name] = out.grad_fn if ok else None

        return fn

    for name, m in candidates.items():
        hooks.append(m.register_forward_pre_hook(pre_hook(name)))
        hooks.append(m.register_forward_hook(post_hook(name)))
    forward_with_hooks(model, example_input, hooks, grad=True)
    blocks: list[str] = []
    for name in candidates:
        if any(name.startswith(b + ".") for b in blocks):
            continue  # inside a block already found
        if calls.get(name) != 1 or seen_in.get(name) is None or seen_out.get(name) is None:
            continue
        if _is_identity_residual(seen_out[name], seen_in[name]):
            blocks.append(name)
    return blocks


def drop_blocks(model: nn.Module, names: tuple[str, ...] | list[str]) -> nn.Module:
    """Replace the named blocks of ``model`` by ``nn.Identity`` in place (names of the rest are kept)."""
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, nn.Identity())  # replaces the entry of a Sequential / ModuleList too
    return model
