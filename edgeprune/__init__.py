"""edgeprune: an edge-deployment compression compiler.

Importing the package is cheap: no torch, no device probing. Stages live in sub-packages and are
imported where they are used.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edgeprune")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
