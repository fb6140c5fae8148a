"""The package version, read once from the installed package's metadata.

Its own module (at the bottom, importing nothing of lstmlab) so that ``lstmlab.__version__``,
``lstmlab --version`` and the version a model folder records are one value, and a module that
records it need not import the package ``__init__`` (which imports that module: a cycle).
"""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("lstmlab")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
