"""Configuration: defaults, then a TOML file (``MFMKG_CONFIG``), then ``MFMKG_*`` variables, then explicit overrides."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

DEFAULTS: dict[str, object] = {
    "DATA_DIR": None,          # persistent store directory; None -> default_data_dir()
    "MEMORY": False,           # True: an ephemeral in-memory store
    "STORE": None,             # a remote SPARQL store URL (see docs/remote-store.md); None: embedded
    "EXTENSIONS_DIR": None,    # a directory of the user's own Turtle files, loaded on top of the shipped ones
    "QUERY_TIMEOUT": 10.0,     # seconds a public SPARQL query may run before it is killed
    "MAX_ROWS": 10000,         # result rows (or triples) returned at most by the public endpoint
    "HOST": "127.0.0.1",
    "PORT": 8787,
    "WRITE_TOKEN": None,       # bearer token for write endpoints; None: writes refused
    "MAX_CONTENT_LENGTH": 50 * 1024 * 1024,
    "CORS_ORIGINS": None,      # CORS is off unless origins are listed
    "SERVICE_ALLOWLIST": [],   # endpoint IRIs a public query may call with SERVICE (default: none)
    "LOAD": [],                # literature paths loaded at start
    "CACHE_ENTRIES": 256,      # cached query results kept per store (0: no cache)
    "CACHE_BYTES": 64 * 1024 * 1024,  # and their total size at most
    "RELOAD_INTERVAL": 2.0,    # seconds between checks for edited ontology files (0: only on SIGHUP/reload)
}


def default_data_dir() -> Path:
    """Per-user data directory following the XDG base directory convention."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "mfmkg"


def _env_value(raw: str) -> object:
    """Environment values are JSON when they parse as JSON (numbers, booleans, lists), else strings."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def load_config(overrides: dict | None = None, environ: dict | None = None) -> dict:
    """The effective configuration as a dict of upper-case keys."""
    env = os.environ if environ is None else environ
    cfg = dict(DEFAULTS)
    path = env.get("MFMKG_CONFIG")
    if path:
        with open(path, "rb") as fh:
            cfg.update({k.upper(): v for k, v in tomllib.load(fh).items()})
    for key, raw in env.items():
        if key.startswith("MFMKG_") and key != "MFMKG_CONFIG":
            cfg[key[len("MFMKG_"):]] = _env_value(raw)
    cfg.update({k.upper(): v for k, v in (overrides or {}).items() if v is not None})
    if not cfg.get("DATA_DIR"):
        cfg["DATA_DIR"] = str(default_data_dir())
    return cfg
