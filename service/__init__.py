"""The Flask service: ``create_app(test_config)`` builds it; one blueprint per concern."""

from __future__ import annotations

import importlib

from flask import Flask

from mfmkg.config import load_config
from mfmkg.service.context import ServiceContext
from mfmkg.service.errors import register_error_handlers

#: Blueprint modules, each exposing ``bp``; a module not yet written is skipped.
BLUEPRINT_MODULES = ("mfmkg.service.meta", "mfmkg.service.sparql", "mfmkg.service.gaps",
                     "mfmkg.service.publications")


def create_app(test_config: dict | None = None, store=None) -> Flask:
    """Build the app. ``test_config`` overrides configuration; ``store`` reuses an already open store."""
    from mfmkg.cli.common import open_ready_store

    app = Flask(__name__)
    cfg = load_config(test_config)
    app.config.update(cfg)
    app.config["MAX_CONTENT_LENGTH"] = cfg["MAX_CONTENT_LENGTH"]
    app.extensions["mfmkg"] = ServiceContext(cfg, store if store is not None else open_ready_store(cfg))
    register_error_handlers(app)
    for name in BLUEPRINT_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        app.register_blueprint(module.bp)
    return app
