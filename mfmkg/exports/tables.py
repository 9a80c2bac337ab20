"""Every named query of ``queries/`` as a CSV file: ``<name>.csv`` in one directory, with default parameters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mfmkg.named_queries import load_queries, run_named
from mfmkg.store.base import SelectResult, Store
from mfmkg.tables import to_csv


@dataclass
class CsvFile:
    query: str
    path: Path | None        # None when skipped
    rows: int = 0
    skipped: str | None = None  # why the query was not exported


def export_csv(store: Store, directory: str | Path, queries_dir: Path | None = None) -> list[CsvFile]:
    """Run every named SELECT query with its default parameters and write ``directory/<name>.csv``.

    Queries with a required parameter (``string!``) have no default table and are skipped, as are queries that
    do not return a table (ASK, CONSTRUCT). CSV is RFC 4180 with IRIs written in full, as ``/gaps.csv`` does.
    """
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, nq in load_queries(queries_dir).items():
        required = [p.name for p in nq.params if p.required]
        if required:
            written.append(CsvFile(name, None, skipped=f"required parameter {', '.join(required)}"))
            continue
        result = run_named(store, nq, {})
        if not isinstance(result, SelectResult):
            written.append(CsvFile(name, None, skipped="not a SELECT query"))
            continue
        path = out_dir / f"{name}.csv"
        path.write_text(to_csv(result.variables, result.values()), encoding="utf-8", newline="")
        written.append(CsvFile(name, path, len(result.rows)))
    return written
