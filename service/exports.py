"""``/export/...``: the STIX 2.1 bundle, the ATLAS Navigator layer and the versioned release dump.

* ``GET /export/stix.json``: a STIX 2.1 bundle (``application/stix+json;version=2.1``);
* ``GET /export/navigator.json``: an ATLAS Navigator layer (``?inferred=true`` counts inferred coverage too);
* ``GET /export/release.ttl`` and ``GET /export/release.jsonld``: the whole graph as Turtle / JSON-LD, named
  ``mfmkg-<version>.<ext>`` in Content-Disposition, with the SHA-256 of the bytes as strong ETag and as
  ``Repr-Digest`` (RFC 9530); ``If-None-Match`` gives 304;
* ``GET /export/release.json``: version, graphs, and the size and SHA-256 of each release file.
"""

from __future__ import annotations

import base64
import json

from flask import Blueprint, Response, jsonify, request

from mfmkg.errors import BadRequest, NotFound
from mfmkg.service.context import ctx

bp = Blueprint("exports", __name__)
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"


def _flag(name: str) -> bool:
    raw = request.args.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise BadRequest(f"parameter {name!r}: expected true or false, got {raw!r}")
    return raw in ("true", "1")


@bp.get("/export/stix.json")
def stix():
    from mfmkg.exports.stix import stix_bundle

    body = json.dumps(stix_bundle(ctx().store), ensure_ascii=False, indent=1)
    return Response(body, content_type=STIX_MEDIA_TYPE)


@bp.get("/export/navigator.json")
def navigator():
    from mfmkg.exports.navigator import navigator_layer

    return jsonify(navigator_layer(ctx().store, inferred=_flag("inferred")))


@bp.get("/export/release.json")
def release_metadata():
    from mfmkg.exports.release import release_info

    return jsonify(release_info(ctx().store))


@bp.get("/export/release.<any(ttl, jsonld):ext>")
def release(ext: str):
    from mfmkg.exports.release import cached_release_files

    files = {f.name.rsplit(".", 1)[1]: f for f in cached_release_files(ctx().store)}
    f = files.get(ext)
    if f is None:
        raise NotFound(f"no release file with extension .{ext}")
    resp = Response(f.data, content_type=f"{f.media_type}; charset=utf-8")
    resp.headers["Content-Disposition"] = f'inline; filename="{f.name}"'
    resp.headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(f.sha256)).decode()}:"
    resp.set_etag(f.sha256)
    return resp.make_conditional(request)
