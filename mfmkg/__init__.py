"""mfmkg: a knowledge graph and SPARQL service for the security and safety of multimodal foundation models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mfmkg")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
