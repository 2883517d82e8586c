"""The pipeline: the only package that calls every stage (load -> ... -> report).

``compile_run`` runs ``edgeprune compile``; ``ensemble_run`` runs ``edgeprune ensemble``.
"""

from edgeprune.pipeline.config_resolution import dry_run_summary, resolve_config
from edgeprune.pipeline.run import compile_run

__all__ = ["compile_run", "dry_run_summary", "resolve_config"]
