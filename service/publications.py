"""``POST /publications``: load a literature file sent in the body (docs/loading.md, "HTTP").

The body's Content-Type names the format; the write token (``WRITE_TOKEN``) is required as a bearer token and
compared in constant time; bodies above ``MAX_CONTENT_LENGTH`` get 413. The answer is the load report as JSON:
201 when the source was written, 200 when nothing changed or on ``?dry_run=true``, 400 (problem+json carrying the
report) when an entry is invalid or the body cannot be read, in which case nothing was stored.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Blueprint, jsonify, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from mfmkg.errors import BadRequest, UnsupportedMediaType
from mfmkg.service.context import ctx
from mfmkg.service.errors import problem_response

bp = Blueprint("publications", __name__)

#: Content-Type -> (format, file name suffix used in reports). ``None`` lets the content decide (JSON vs CSL-JSON).
MEDIA_TYPES = {
    "application/x-bibtex": ("bibtex", ".bib"),
    "text/x-bibtex": ("bibtex", ".bib"),
    "text/csv": ("csv", ".csv"),
    "application/json": (None, ".json"),
    "application/x-ndjson": ("jsonl", ".jsonl"),
    "application/jsonl": ("jsonl", ".jsonl"),
    "application/json-lines": ("jsonl", ".jsonl"),
    "application/vnd.citationstyles.csl+json": ("csljson", ".csl.json"),
    "application/atom+xml": ("arxiv-atom", ".atom"),
    "text/markdown": ("markdown", ".md"),
    "text/x-markdown": ("markdown", ".md"),
}
_TRUE = ("1", "true", "yes", "on")


def check_token() -> None:
    """401 (with ``WWW-Authenticate: Bearer``) unless the request carries the configured write token."""
    token = ctx().config.get("WRITE_TOKEN")
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token}" if token else ""
    # compare_digest on bytes of both strings: constant time whatever the header holds
    if not token or not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        raise Unauthorized("a valid bearer token is required to load publications" if token else
                           "writes are disabled: no write token is configured (MFMKG_WRITE_TOKEN)",
                           www_authenticate=WWWAuthenticate("bearer", {"realm": "mfmkg"}))


@bp.post("/publications")
def post_publications():
    check_token()
    mime = request.mimetype
    if mime not in MEDIA_TYPES:
        raise UnsupportedMediaType(f"Content-Type {mime or '(none)'!r} is not a literature format; use one of "
                                   + ", ".join(sorted(MEDIA_TYPES)))
    fmt, suffix = MEDIA_TYPES[mime]
    data = request.get_data(cache=False)  # 413 past MAX_CONTENT_LENGTH
    if not data:
        raise BadRequest("the request body is empty")
    from mfmkg.loaders import identity
    from mfmkg.loaders.pipeline import Input, load_source
    from mfmkg.loaders.report import LoadReport

    source = request.args.get("source") or "upload-" + hashlib.sha256(data).hexdigest()[:12]
    if not identity.valid_source_name(source):
        raise BadRequest("parameter 'source': 1-100 letters, digits, '.', '_' or '-', starting with a letter "
                         "or digit")
    dry_run = request.args.get("dry_run", "").lower() in _TRUE
    skip_invalid = request.args.get("skip_invalid", "").lower() in _TRUE
    report = LoadReport(dry_run=dry_run, skip_invalid=skip_invalid)
    report.sources.append(load_source(ctx().store, source, [Input(f"{source}{suffix}", data=data)], fmt=fmt,
                                      skip_invalid=skip_invalid, dry_run=dry_run))
    body = report.to_dict()
    src = report.sources[0]
    if not report.ok:
        problems = [e.to_dict() for e in src.errors]
        detail = "; ".join(p["message"] for p in problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        resp = problem_response(400, "Invalid input", f"nothing was stored: {detail}" if src.status == "failed"
                                else detail, errors=problems, report=body)
        return resp
    return jsonify(body), (201 if src.status == "loaded" else 200)
