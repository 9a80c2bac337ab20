"""Where the shipped named queries live."""

from importlib.resources import files
from pathlib import Path


def queries_dir() -> Path:
    return Path(str(files("mfmkg.queries")))


def checks_dir() -> Path:
    return Path(str(files("mfmkg.queries.checks")))
