"""AOTInductor package (``model.pt2``) for the C++ runner's LibTorch backend.

``torch.export`` + ``aoti_compile_and_package`` compiles the network ahead of time into a shared
library inside a ``.pt2`` package that ``torch::inductor::AOTIModelPackageLoader`` runs from C++
without Python or a compiler. The package is compiled for the build machine's CPU (``-march=native``
here: AVX-512), so it is tied to that CPU family; :func:`cpu_isa` names it for the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeprune.atomic import atomic_output
from edgeprune.errors import ExportError


def export_aoti(model: Any, example_input: Any, path: Path, *, dynamic_batch: bool = False) -> Path:
    """Compile ``model`` (eval mode) for ``example_input``'s shape into the package ``path`` (10-30 s)."""
    import torch

    path = Path(path)
    was_training = model.training
    model.eval()
    try:
        dynamic = None
        if dynamic_batch:
            dynamic = ({0: torch.export.Dim("batch", min=1, max=1024)},)
        with torch.no_grad(), atomic_output(path) as tmp:  # tmp keeps the .pt2 name the packager wants
            exported = torch.export.export(model, (example_input,), dynamic_shapes=dynamic)
            torch._inductor.aoti_compile_and_package(exported, package_path=str(tmp))
    except Exception as err:  # torch.export / inductor raise many types
        raise ExportError(f"AOTInductor export failed: {str(err).splitlines()[0][:300]}") from None
    finally:
        model.train(was_training)
    return path


def cpu_isa() -> str:
    """The widest x86 vector ISA of this CPU (``avx512``, ``avx2``, ...) or the machine name."""
    from edgeprune.latency.timing import cpu_info

    info = cpu_info()
    for isa in ("avx512f", "avx2", "avx", "sse4_2"):
        if isa in info["isa"]:
            return isa.replace("avx512f", "avx512")
    return str(info["arch"])
