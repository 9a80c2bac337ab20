"""Paging of JSON lists: ``_size`` (rows per page) and ``_next`` (an opaque token from the previous page).

The token is base64url JSON holding the position (an offset, or a list's "offset/total") and a
fingerprint of the request's other parameters, so a token replayed against another query or other parameters is a
400 rather than a silently wrong page. Tokens are not secret and not signed: a forged one can only ask for another
position of a result its holder may read anyway. The ``next`` link repeats every parameter of the request.
"""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import urlencode

from flask import Response, request

from mfmkg.errors import BadRequest

DEFAULT_SIZE = 100
SIZE, NEXT = "_size", "_next"


def page_size(default: int = DEFAULT_SIZE) -> int:
    """The requested page size: ``_size`` between 1 and the configured ``MAX_ROWS`` (``default`` when absent)."""
    from mfmkg.service.context import ctx

    limit = int(ctx().config.get("MAX_ROWS") or 10000)
    raw = request.args.get(SIZE)
    if raw is None or raw == "":
        return min(default, limit)
    if not raw.strip().isdigit() or not 1 <= int(raw) <= limit:
        raise BadRequest(f"parameter '{SIZE}': expected an integer from 1 to {limit}, got {raw!r}")
    return int(raw)


def fingerprint() -> str:
    """What a token is valid for: the path and every parameter other than the paging ones."""
    items = sorted((k, v) for k, vs in request.args.lists() for v in vs if k not in (SIZE, NEXT))
    return hashlib.sha256(json.dumps([request.path, items]).encode()).hexdigest()[:16]


def encode_token(position: int | str) -> str:
    raw = json.dumps({"p": position, "f": fingerprint()}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token() -> int | str | None:
    """The position the request's ``_next`` token points at, None without a token; 400 for a bad token."""
    token = request.args.get(NEXT)
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position, fp = data["p"], data["f"]
    except (ValueError, TypeError, KeyError):
        raise BadRequest(f"parameter '{NEXT}': not a paging token of this service") from None
    if fp != fingerprint():
        raise BadRequest(f"parameter '{NEXT}': the token belongs to another query or other parameters")
    valid = isinstance(position, str) or (isinstance(position, int) and not isinstance(position, bool) and position >= 0)
    if not valid:
        raise BadRequest(f"parameter '{NEXT}': not a paging token of this service")
    return position


def decode_offset() -> int:
    position = decode_token()
    if position is None:
        return 0
    if not isinstance(position, int):
        raise BadRequest(f"parameter '{NEXT}': not a paging token of this list")
    return position


def next_url(token: str) -> str:
    """This request's URL with ``_next`` set to ``token`` (every other parameter kept)."""
    items = [(k, v) for k, vs in request.args.lists() for v in vs if k != NEXT] + [(NEXT, token)]
    return f"{request.base_url}?{urlencode(items)}"


def add_link(response: Response, url: str | None) -> Response:
    """RFC 8288 ``Link: <url>; rel="next"`` when there is a next page."""
    if url:
        response.headers.add("Link", f'<{url}>; rel="next"')
    return response
