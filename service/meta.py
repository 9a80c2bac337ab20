"""Operational endpoints: liveness and what exactly is being served."""

from __future__ import annotations

from flask import Blueprint, jsonify

from mfmkg import __version__
from mfmkg.namespaces import ONTOLOGY_GRAPH, ONTOLOGY_IRI
from mfmkg.exports.release import release_info
from mfmkg.onto import HASH_KEY
from mfmkg.service.context import ctx
from mfmkg.store.base import SelectResult

bp = Blueprint("meta", __name__)


@bp.get("/-/health")
def health():
    # A rejected ontology edit is "degraded", not down: the last good graph is still served, so stay 200.
    return jsonify(ctx().health)


@bp.get("/-/version.json")
def version():
    store = ctx().store
    res = store.query(
        "SELECT ?v ?info WHERE { GRAPH ?g { ?o <http://www.w3.org/2002/07/owl#versionIRI> ?v "
        "OPTIONAL { ?o <http://www.w3.org/2002/07/owl#versionInfo> ?info } } }",
        bindings={"g": _iri(ONTOLOGY_GRAPH), "o": _iri(ONTOLOGY_IRI)},
    )
    row = res.rows[0] if isinstance(res, SelectResult) and res.rows else (None, None)
    return jsonify({
        "package": "mfmkg",
        "version": __version__,
        "ontology": {"iri": ONTOLOGY_IRI, "versionIRI": _s(row[0]), "versionInfo": _s(row[1]),
                     "contentHash": store.get_meta(HASH_KEY)},
        "triples": store.stats(),
        "release": release_info(store),
    })


def _iri(text: str):
    from rdflib import URIRef

    return URIRef(text)


def _s(term) -> str | None:
    return None if term is None else str(term)
