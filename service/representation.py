"""Choosing and writing the representation of a list or table: JSON, CSV or TSV, by file suffix or ``Accept``.

A suffix (``/threats.csv``) fixes the format; otherwise the ``Accept`` header decides, with JSON for a request
without one and a 406 problem when it accepts none of the offers. Negotiated responses say ``Vary: Accept``.
Accept parsing is the SPARQL endpoint's (``negotiate``), so every route ranks media ranges the same way.
"""

from __future__ import annotations

import csv
import io
import json

from flask import Response, request

from mfmkg.errors import NotAcceptable
from mfmkg.service.negotiate import content_type_header, parse_accept, quality

MEDIA = {"json": "application/json", "csv": "text/csv", "tsv": "text/tab-separated-values"}


def choose(ext: str | None, formats: tuple[str, ...] = ("json", "csv")) -> str:
    """The format named by the suffix, else the best one for the request's Accept header."""
    if ext:
        return ext
    accept = request.headers.get("Accept", "")
    if not accept.strip():
        return formats[0]
    ranges = parse_accept(accept)
    best, best_q = None, 0.0
    for fmt in formats:
        q = quality(MEDIA[fmt], ranges)
        if q > best_q:
            best, best_q = fmt, q
    if best is None:
        offered = ", ".join(MEDIA[f] for f in formats)
        raise NotAcceptable(f"{request.path} is available as {offered}; the request accepts none (Accept: {accept})")
    return best


def respond(body: str | bytes, fmt: str, negotiated: bool, status: int = 200) -> Response:
    resp = Response(body, status=status, content_type=content_type_header(MEDIA[fmt]))
    if negotiated:
        resp.vary.add("Accept")
    return resp


def json_response(data: object, negotiated: bool) -> Response:
    return respond(json.dumps(data, ensure_ascii=False, default=str), "json", negotiated)


def cell(value: object) -> str:
    """A CSV cell: lists joined with '; ', booleans as true/false, None empty, link objects by their IRI."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return str(value.get("iri", ""))
    if isinstance(value, (list, tuple)):
        return "; ".join(cell(v) for v in value)
    return str(value)


def rows_csv(columns: list[str], rows: list[dict], delimiter: str = ",") -> str:
    """Plain rows as RFC 4180 CSV (CRLF line ends)."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([cell(r.get(c)) for c in columns])
    return buf.getvalue()


def columns_of(rows: list[dict], first: tuple[str, ...] = ("id", "iri", "label")) -> list[str]:
    """Every key of the rows, ``first`` ones first, the rest in order of appearance."""
    cols = [c for c in first if any(c in r for r in rows)]
    for r in rows:
        cols += [k for k in r if k not in cols]
    return cols


def vary_on_accept(blueprint) -> None:
    """Every response of the blueprint's routes without a format suffix says ``Vary: Accept``, errors too: a 406
    or a problem body depends on Accept as much as a 200 does."""

    @blueprint.after_request
    def _vary(response: Response) -> Response:
        if (request.view_args or {}).get("ext") is None:
            response.vary.add("Accept")
        return response
