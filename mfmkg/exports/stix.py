"""The graph as a STIX 2.1 bundle (plain JSON; validated with the ``stix2`` library in the tests).

- one ``attack-pattern`` per threat class (families and goal classes) and per SoK attack (A01-A73);
- one ``course-of-action`` per defense class;
- one ``relationship`` ``mitigates`` (course-of-action -> attack-pattern) per asserted coverage link, its degree
  in the description; ``related-to`` from each attack to its threat class and from each goal class to its family;
- an ``identity`` for mfmkg as ``created_by_ref`` of everything.

Our IRI and local id are the first external reference (``source_name`` "mfmkg"); crosswalk mappings follow
(``mitre-atlas`` with the ATLAS id and page, ``owasp-llm-top-10-2025``, ``nist-ai-100-2-e2025``), the SKOS match
kind in their description; an attack also cites its paper. Ids are UUIDv5 of our IRIs, timestamps are fixed
(``SOURCE_DATE_EPOCH`` if set), and objects are sorted, so the same graph always gives the same bundle.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timezone

from mfmkg import __version__
from mfmkg.exports.common import (ATLAS_PREFIX, FRAMEWORKS, Mapping, coverage_links, local, mappings,
                                  ontology_version, rows, threat_classes)
from mfmkg.store.base import Store

#: UUIDv5 namespace of every STIX id mfmkg mints.
STIX_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://w3id.org/mfmkg/")
#: Used for created/modified unless SOURCE_DATE_EPOCH is set: a fixed instant keeps the bundle byte-stable.
DEFAULT_TIMESTAMP = "2025-01-01T00:00:00.000Z"
KILL_CHAIN = "mfmkg-information-flow"
IDENTITY_KEY = "https://w3id.org/mfmkg/"


def stix_id(kind: str, key: str) -> str:
    """A deterministic STIX identifier: ``kind--uuid5(mfmkg namespace, key)``."""
    return f"{kind}--{uuid.uuid5(STIX_NAMESPACE, kind + ' ' + key)}"


def timestamp() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return DEFAULT_TIMESTAMP


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _mapping_ref(m: Mapping) -> dict:
    source, url = next(v for k, v in FRAMEWORKS.items() if m.target.startswith(k))
    if m.target.startswith(ATLAS_PREFIX):
        from mfmkg.loaders.atlas import atlas_url

        url = atlas_url(m.notation)
    desc = f"mfmkg crosswalk: skos:{m.match}" + (f" ({m.label})" if m.label else "")
    return {"source_name": source, "external_id": m.notation, "url": url, "description": desc}


def _own_ref(iri: str, external_id: str) -> dict:
    return {"source_name": "mfmkg", "external_id": external_id, "url": iri}


def stix_bundle(store: Store) -> dict:
    """The bundle as a JSON-ready dict (see the module docstring)."""
    ts = timestamp()
    version = ontology_version(store)
    identity = stix_id("identity", IDENTITY_KEY)
    common = {"spec_version": "2.1", "created": ts, "modified": ts, "created_by_ref": identity}
    maps = mappings(store)
    classes = threat_classes(store)
    flows = rows(store, "SELECT ?f ?label WHERE { ?f a mfm:InformationFlow OPTIONAL { ?f rdfs:label ?label } }")
    flow_names = {r["f"]: _slug(r["label"] or local(r["f"])) for r in flows}

    def phases(flow_iris: list[str]) -> list[dict]:
        return [{"kill_chain_name": KILL_CHAIN, "phase_name": flow_names.get(f, _slug(local(f)))}
                for f in sorted(flow_iris)]

    objects: list[dict] = [{
        "type": "identity", "id": identity, "spec_version": "2.1", "created": ts, "modified": ts,
        "name": "mfmkg", "identity_class": "system",
        "description": f"mfmkg {__version__}, ontology {version}: the knowledge graph of multimodal foundation "
                       "model threats and defenses (https://w3id.org/mfmkg/ont).",
    }]
    relationships: list[dict] = []
    pattern_ids: dict[str, str] = {}

    for iri in sorted(classes):
        c = classes[iri]
        obj = {"type": "attack-pattern", "id": stix_id("attack-pattern", iri), **common, "name": c.label,
               "description": c.definition or c.label,
               "external_references": [_own_ref(iri, local(iri))] + [_mapping_ref(m) for m in maps.get(iri, [])],
               "labels": ["threat-family" if c.is_family else "threat-class"]}
        if c.flows:
            obj["kill_chain_phases"] = phases(c.flows)
        objects.append(obj)
        pattern_ids[iri] = obj["id"]
    for iri in sorted(classes):
        for parent in classes[iri].parents:
            if parent in pattern_ids:
                relationships.append(_relationship("related-to", pattern_ids[iri], pattern_ids[parent], common,
                                                   f"{local(iri)} is a kind of {local(parent)}."))

    for a in _attacks(store):
        obj = {"type": "attack-pattern", "id": stix_id("attack-pattern", a["iri"]), **common,
               "name": f"{a['label']} (SoK row {a['row']})",
               "description": f"Attack of row {a['row']} of the SoK threat table (arXiv:2411.11195), an instance of "
                              f"the threat class {local(a['class'])}.",
               "external_references": [_own_ref(a["iri"], local(a["iri"]))] + a["refs"],
               "labels": ["sok-attack"]}
        if a["flows"]:
            obj["kill_chain_phases"] = phases(a["flows"])
        objects.append(obj)
        if a["class"] in pattern_ids:
            relationships.append(_relationship("related-to", obj["id"], pattern_ids[a["class"]], common,
                                               f"{local(a['iri'])} is an instance of {local(a['class'])}."))

    defense_ids: dict[str, str] = {}
    for d in _defenses(store):
        obj = {"type": "course-of-action", "id": stix_id("course-of-action", d["iri"]), **common,
               "name": d["label"], "description": d["definition"] or d["label"],
               "external_references": [_own_ref(d["iri"], local(d["iri"]))]
               + [_mapping_ref(m) for m in maps.get(d["iri"], [])]}
        objects.append(obj)
        defense_ids[d["iri"]] = obj["id"]

    for link in coverage_links(store, inferred=False):
        if link["defense"] not in defense_ids or link["threat"] not in pattern_ids:
            continue
        degree = "full" if link["weight"] >= 1.0 else "partial"
        text = f"{degree.capitalize()} coverage (weight {link['weight']:g}), asserted."
        if link["note"]:
            text += " " + link["note"]
        rel = _relationship("mitigates", defense_ids[link["defense"]], pattern_ids[link["threat"]], common, text,
                            key=link["cov"])
        rel["external_references"] = [_own_ref(link["cov"], local(link["cov"]))]
        relationships.append(rel)

    objects.extend(sorted(relationships, key=lambda r: r["id"]))
    return {"type": "bundle", "id": stix_id("bundle", f"{IDENTITY_KEY} {version}"), "objects": objects}


def _relationship(kind: str, source: str, target: str, common: dict, description: str, key: str | None = None) -> dict:
    return {"type": "relationship", "id": stix_id("relationship", key or f"{source} {kind} {target}"), **common,
            "relationship_type": kind, "source_ref": source, "target_ref": target, "description": description}


def _attacks(store: Store) -> list[dict]:
    found = rows(store, """
        SELECT ?a ?label ?row ?class ?flow ?pub ?title ?ident ?doi ?url WHERE {
          ?a a mfm:Attack ; rdfs:label ?label ; mfm:sokRow ?row ; a ?class .
          ?class rdfs:subClassOf ?family . ?family rdfs:subClassOf mfm:Threat .
          OPTIONAL { ?a mfm:onFlow ?flow }
          OPTIONAL { ?a dcterms:source ?pub .
                     OPTIONAL { ?pub dcterms:title ?title } OPTIONAL { ?pub dcterms:identifier ?ident }
                     OPTIONAL { ?pub bibo:doi ?doi } OPTIONAL { ?pub mfm:url ?url } }
        }""")
    attacks: dict[str, dict] = {}
    for r in found:
        a = attacks.setdefault(r["a"], {"iri": r["a"], "label": r["label"], "row": int(r["row"]),
                                        "class": r["class"], "flows": [], "refs": []})
        if r["flow"] and r["flow"] not in a["flows"]:
            a["flows"].append(r["flow"])
        if r["pub"]:
            ref = {"source_name": "publication", "description": r["title"] or local(r["pub"])}
            if r["ident"]:
                ref["external_id"] = r["ident"]
            url = r["url"] or (f"https://doi.org/{r['doi']}" if r["doi"] else None) or r["pub"]
            ref["url"] = url
            if ref not in a["refs"]:
                a["refs"].append(ref)
    for a in attacks.values():
        a["refs"].sort(key=lambda x: (x.get("external_id") or "", x["url"]))
    return sorted(attacks.values(), key=lambda a: a["row"])


def _defenses(store: Store) -> list[dict]:
    found = rows(store, """
        SELECT ?d (SAMPLE(?l) AS ?label) (SAMPLE(?df) AS ?definition) WHERE {
          ?d rdfs:subClassOf+ mfm:Defense . FILTER(isIRI(?d))
          OPTIONAL { ?d rdfs:label ?l } OPTIONAL { ?d skos:definition ?df }
        } GROUP BY ?d ORDER BY ?d""")
    return [{"iri": r["d"], "label": r["label"] or local(r["d"]), "definition": r["definition"]} for r in found]


__all__ = ["STIX_NAMESPACE", "stix_bundle", "stix_id"]
