"""Plain tables from SELECT results: aligned text for terminals, CSV and JSON for programs."""

from __future__ import annotations

import csv
import io
import json

from mfmkg.namespaces import PREFIXES
from mfmkg.store.base import SelectResult, to_python

_SHORT = sorted(((iri, p) for p, iri in PREFIXES.items()), key=lambda x: -len(x[0]))


def compact(value: object) -> object:
    """An IRI shortened with our prefixes (mfm:Image), for reading; other values unchanged."""
    if isinstance(value, str):
        for iri, prefix in _SHORT:
            if value.startswith(iri) and len(value) > len(iri):
                return f"{prefix}:{value[len(iri):]}"
    return value


def to_csv(variables: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(variables)
    for r in rows:
        w.writerow(["" if r.get(v) is None else r.get(v) for v in variables])
    return buf.getvalue()


def to_text(variables: list[str], rows: list[dict]) -> str:
    """Aligned columns with compacted IRIs."""
    cells = [[str(compact(r.get(v))) if r.get(v) is not None else "" for v in variables] for r in rows]
    widths = [max([len(v)] + [len(c[i]) for c in cells]) for i, v in enumerate(variables)]
    line = lambda vals: "  ".join(val.ljust(w) for val, w in zip(vals, widths)).rstrip()  # noqa: E731
    out = [line(variables), line(["-" * w for w in widths])] + [line(c) for c in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def render(result: SelectResult, fmt: str) -> str:
    rows = result.values()
    if fmt == "json":
        return json.dumps({"vars": result.variables, "rows": rows}, indent=2, ensure_ascii=False)
    if fmt == "csv":
        return to_csv(result.variables, rows)
    return to_text(result.variables, rows)


__all__ = ["compact", "render", "to_csv", "to_python", "to_text"]
