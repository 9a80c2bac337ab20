"""Store backends behind one interface (``Store``); ``open_store`` picks one from the configuration."""

from mfmkg.store.base import AskResult, GraphResult, RawResult, SelectResult, Store

__all__ = ["AskResult", "GraphResult", "RawResult", "SelectResult", "Store", "open_store"]


def open_store(config: dict) -> Store:
    """The store the configuration names: in memory, a remote endpoint, or the persistent default."""
    from mfmkg.store.embedded import EmbeddedStore

    if config.get("STORE"):
        from mfmkg.store.remote import RemoteStore

        return RemoteStore(str(config["STORE"]), config)
    if config.get("MEMORY"):
        return EmbeddedStore(None)
    return EmbeddedStore(config["DATA_DIR"])
