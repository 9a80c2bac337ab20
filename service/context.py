"""The per-app state every blueprint reads: configuration and the open store."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from mfmkg.store.base import Store


@dataclass
class ServiceContext:
    config: dict
    store: Store
    watcher: object = None  # service.reload.OntologyWatcher

    @property
    def health(self) -> dict:
        return self.watcher.health if self.watcher is not None else {"status": "ok"}


def ctx() -> ServiceContext:
    return current_app.extensions["mfmkg"]
