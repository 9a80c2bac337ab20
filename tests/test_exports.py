"""Exports: CSV of every named query, the STIX 2.1 bundle (validated by the stix2 library), the ATLAS Navigator
layer, the versioned release dump with its digests; over HTTP through a real server, and from the CLI."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import uuid

import pytest
import requests
import stix2
from rdflib import Graph

from conftest import REPO
from mfmkg.exports.common import ATLAS_PREFIX, mappings, threat_classes
from mfmkg.loaders.atlas import load_atlas
from mfmkg.namespaces import MFM, sparql_prefixes

FULL = REPO / "data" / "atlas" / "ATLAS.yaml"
MINI = REPO / "tests" / "data" / "atlas" / "mini-ATLAS.yaml"
TINY = REPO / "tests" / "data" / "crosswalk" / "tiny.ttl"


def count(store, body: str) -> int:
    return store.query(sparql_prefixes() + body).values()[0]["n"]


@pytest.fixture(scope="module")
def full_store():
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store.embedded import EmbeddedStore

    s = EmbeddedStore(None)
    ensure_loaded(s, ontology_files())
    load_atlas(s, FULL)
    yield s
    s.close()


@pytest.fixture
def tiny_store():
    from mfmkg.store.embedded import EmbeddedStore

    s = EmbeddedStore(None)
    s.load(TINY.read_bytes(), "text/turtle", "https://w3id.org/mfmkg/graph/ontology")
    load_atlas(s, MINI)
    yield s
    s.close()


@pytest.fixture(scope="module")
def bundle(full_store):
    from mfmkg.exports.stix import stix_bundle

    return stix_bundle(full_store)


# -- STIX ----------------------------------------------------------------------------------------------------

def test_stix_bundle_validates(bundle):
    parsed = stix2.parse(json.dumps(bundle), allow_custom=False)
    assert isinstance(parsed, stix2.v21.Bundle) and len(parsed.objects) == len(bundle["objects"])


@pytest.mark.parametrize("kind, query", [
    ("attack-pattern", "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { { ?x rdfs:subClassOf+ mfm:Threat } "
                       "UNION { ?x a mfm:Attack } }"),
    ("course-of-action", "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x rdfs:subClassOf+ mfm:Defense }"),
    ("mitigates", "SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE { ?x a mfm:Coverage ; mfm:linkKind mfm:Asserted }"),
])
def test_stix_one_object_per_thing(bundle, full_store, kind, query):
    objects = [o for o in bundle["objects"] if o["type"] == kind or o.get("relationship_type") == kind]
    assert len(objects) == count(full_store, query) > 0


def test_stix_ids_are_deterministic_uuid5(bundle, full_store):
    from mfmkg.exports.stix import stix_bundle

    assert stix_bundle(full_store) == bundle
    ids = [o["id"] for o in bundle["objects"]] + [bundle["id"]]
    assert len(set(ids)) == len(ids)
    assert {uuid.UUID(i.split("--", 1)[1]).version for i in ids} == {5}


def test_stix_references_point_at_objects_of_the_bundle(bundle):
    ids = {o["id"] for o in bundle["objects"]}
    for o in bundle["objects"]:
        if o["type"] == "relationship":
            assert o["source_ref"] in ids and o["target_ref"] in ids
        if o["type"] != "identity":
            assert o["created_by_ref"] in ids


def test_stix_our_iri_comes_first(bundle):
    for o in bundle["objects"]:
        if o["type"] in ("attack-pattern", "course-of-action"):
            first = o["external_references"][0]
            assert first["source_name"] == "mfmkg" and first["url"].startswith("https://w3id.org/mfmkg/")


def test_stix_atlas_ids_as_external_references(bundle, full_store):
    by_iri = {o["external_references"][0]["url"]: o for o in bundle["objects"]
              if o["type"] in ("attack-pattern", "course-of-action")}
    checked = 0
    for cls, maps in mappings(full_store).items():
        want = {m.notation for m in maps if m.target.startswith(ATLAS_PREFIX)}
        got = {r["external_id"] for r in by_iri[cls]["external_references"] if r["source_name"] == "mitre-atlas"}
        assert got == want, cls
        checked += bool(want)
    assert checked > 30
    jailbreak = by_iri[str(MFM.MisleadingJailbreak)]["external_references"]
    assert {"source_name": "mitre-atlas", "external_id": "AML.T0054",
            "url": "https://atlas.mitre.org/techniques/AML.T0054",
            "description": "mfmkg crosswalk: skos:closeMatch (LLM Jailbreak)"} in jailbreak


def test_stix_mitigates_carries_the_degree(bundle):
    names = {o["id"]: o["name"] for o in bundle["objects"] if "name" in o}
    rels = [o for o in bundle["objects"] if o.get("relationship_type") == "mitigates"]
    assert all(o["description"].startswith(("Full coverage", "Partial coverage")) for o in rels)
    assert ("JPEG compression", "misleading threat: adversarial") in {
        (names[o["source_ref"]], names[o["target_ref"]]) for o in rels}


def test_stix_attacks_cite_their_paper(bundle):
    attacks = [o for o in bundle["objects"] if "sok-attack" in o.get("labels", [])]
    assert len(attacks) == 73
    assert all(any(r["source_name"] == "publication" for r in a["external_references"]) for a in attacks)


# -- Navigator -----------------------------------------------------------------------------------------------

def test_navigator_scores_every_mapped_technique(full_store):
    from mfmkg.exports.navigator import navigator_layer

    layer = navigator_layer(full_store)
    assert layer["domain"] == "atlas-atlas" and layer["versions"]["layer"] == "4.5"
    scored = {t["techniqueID"]: t["score"] for t in layer["techniques"] if "score" in t}
    mapped = {m.notation for cls, ms in mappings(full_store).items() if cls in threat_classes(full_store)
              for m in ms if m.counterpart and m.target.startswith(ATLAS_PREFIX)}
    assert set(scored) == mapped
    assert all(0 <= s <= 100 for s in scored.values())
    assert len(layer["gradient"]["colors"]) >= 2 and layer["gradient"]["maxValue"] == 100
    # a parent is listed (unscored, expanded) when only its sub-technique is scored
    entries = {t["techniqueID"]: t for t in layer["techniques"]}
    assert entries["AML.T0034"].get("showSubtechniques") and "score" not in entries["AML.T0034"]


def test_navigator_tiny_scores(tiny_store):
    from mfmkg.exports.navigator import navigator_layer, technique_scores

    scores = technique_scores(tiny_store)
    # T0001: ThreatA1 fully covered, ThreatE partially -> 75; T0002: ThreatA2 uncovered -> 0;
    # T0003: families B and D stand for their goal classes B1 and D1, both uncovered -> 0; T0004 only related
    assert {k: v["score"] for k, v in scores.items()} == {"AML.T0001": 75, "AML.T0002": 0, "AML.T0003": 0}
    assert scores["AML.T0001"]["name"] == "Covered technique"
    assert technique_scores(tiny_store, inferred=True)["AML.T0002"]["score"] == 50  # inferred partial on FamA
    assert navigator_layer(tiny_store)["techniques"][0]["techniqueID"] == "AML.T0001"


# -- release -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def release_dir(full_store, tmp_path_factory):
    from mfmkg.exports.release import write_release

    out = tmp_path_factory.mktemp("release")
    return out, write_release(full_store, out)


@pytest.mark.parametrize("ext, fmt", [("ttl", "turtle"), ("jsonld", "json-ld")])
def test_release_digest_matches_file_bytes(release_dir, ext, fmt, full_store):
    from mfmkg.exports.release import release_graph

    out, info = release_dir
    name = f"mfmkg-{info['version']}.{ext}"
    data = (out / name).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert info["files"][name]["sha256"] == digest and info["files"][name]["bytes"] == len(data)
    assert f"{digest}  {name}\n" in (out / "SHA256SUMS").read_text()
    from rdflib.compare import isomorphic

    back = Graph().parse(data=data, format=fmt)
    assert len(back) == info["triples"] and isomorphic(back, release_graph(full_store))


def test_release_is_named_with_the_ontology_version_and_is_deterministic(release_dir, full_store):
    from mfmkg.exports.release import release_info

    out, info = release_dir
    assert info["version"] == "0.1.0" and sorted(p.name for p in out.iterdir()) == [
        "SHA256SUMS", "mfmkg-0.1.0.jsonld", "mfmkg-0.1.0.ttl"]
    assert release_info(full_store)["files"] == info["files"]
    assert "https://w3id.org/mfmkg/graph/source/atlas" in info["graphs"]


def test_release_info_follows_the_graph():
    from mfmkg.exports.release import release_info
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store.embedded import EmbeddedStore

    s = EmbeddedStore(None)
    ensure_loaded(s, ontology_files())
    before = release_info(s)
    load_atlas(s, MINI)
    after = release_info(s)
    assert before["files"] != after["files"] and after["triples"] > before["triples"]


# -- CSV -----------------------------------------------------------------------------------------------------

def test_csv_of_every_named_query(full_store, tmp_path):
    from mfmkg.exports.tables import export_csv
    from mfmkg.named_queries import get_query, load_queries, run_named

    files = {f.query: f for f in export_csv(full_store, tmp_path)}
    assert set(files) == set(load_queries())
    for name, f in files.items():
        nq = get_query(name)
        if any(p.required for p in nq.params):
            assert f.path is None and f.skipped
            continue
        table = list(csv.reader(io.StringIO(f.path.read_text(encoding="utf-8"), newline="")))
        result = run_named(full_store, nq, {})
        assert table[0] == result.variables and len(table) - 1 == len(result.rows) == f.rows, name
    assert files["threats-without-atlas"].rows > 0 and files["atlas-techniques-without-defense"].rows > 0


# -- HTTP ----------------------------------------------------------------------------------------------------

def test_http_stix(live_server):
    r = requests.get(live_server.url + "/export/stix.json", timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/stix+json")
    stix2.parse(r.text, allow_custom=False)


def test_http_navigator(live_server):
    r = requests.get(live_server.url + "/export/navigator.json", timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    layer = r.json()
    assert layer["domain"] == "atlas-atlas" and any("score" in t for t in layer["techniques"])
    assert requests.get(live_server.url + "/export/navigator.json?inferred=maybe", timeout=60).status_code == 400


@pytest.mark.parametrize("ext, media, fmt", [("ttl", "text/turtle", "turtle"),
                                             ("jsonld", "application/ld+json", "json-ld")])
def test_http_release(live_server, ext, media, fmt):
    url = f"{live_server.url}/export/release.{ext}"
    r = requests.get(url, timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith(media)
    digest = hashlib.sha256(r.content).hexdigest()
    assert r.headers["ETag"] == f'"{digest}"'
    assert r.headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(digest)).decode()}:"
    assert f'filename="mfmkg-0.1.0.{ext}"' in r.headers["Content-Disposition"]
    assert len(Graph().parse(data=r.content, format=fmt)) > 3000
    info = requests.get(live_server.url + "/export/release.json", timeout=60).json()
    assert info["files"][f"mfmkg-0.1.0.{ext}"]["sha256"] == digest
    again = requests.get(url, headers={"If-None-Match": r.headers["ETag"]}, timeout=60)
    assert again.status_code == 304 and not again.content


def test_http_unknown_release_extension_is_a_problem(live_server):
    r = requests.get(live_server.url + "/export/release.xml", timeout=30)
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/problem+json"


# -- CLI -----------------------------------------------------------------------------------------------------

def test_cli_atlas_load(runner, tmp_path):
    from mfmkg.cli import main

    result = runner.invoke(main, ["atlas", "load", "--data-dir", str(tmp_path / "store"), str(MINI)])
    assert result.exit_code == 0, result.output
    assert "2 tactics, 5 techniques (1 sub-techniques), 2 mitigations, 1 case studies" in result.stdout
    assert "ml-lifecycle" in result.stderr
    # the graph persists: a query in the same data directory sees it
    result = runner.invoke(main, ["query", "atlas-techniques-without-defense", "--data-dir", str(tmp_path / "store"),
                                  "-p", "unmapped=true", "--format", "csv"])
    assert result.exit_code == 0 and "AML.T0004" in result.stdout


def test_cli_atlas_load_bad_file(runner, tmp_path):
    from mfmkg.cli import main

    bad = tmp_path / "ATLAS.yaml"
    bad.write_text("matrices:\n- id: ATLAS\n  techniques:\n  - id: nope\n    name: x\n")
    result = runner.invoke(main, ["atlas", "load", "--memory", str(bad)])
    assert result.exit_code == 1 and f"error: {bad}:4: id:" in result.stderr


def test_cli_export_release_and_stix(runner, tmp_path):
    from mfmkg.cli import main

    result = runner.invoke(main, ["export", "release", "--memory", "--atlas", str(MINI), str(tmp_path / "rel")])
    assert result.exit_code == 0, result.output
    for line in (tmp_path / "rel" / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((tmp_path / "rel" / name).read_bytes()).hexdigest() == digest
        assert digest in result.stdout
    result = runner.invoke(main, ["export", "stix", "--memory", "-o", str(tmp_path / "b.json")])
    assert result.exit_code == 0
    stix2.parse((tmp_path / "b.json").read_text(), allow_custom=False)
    result = runner.invoke(main, ["export", "navigator", "--memory"])
    assert result.exit_code == 0 and json.loads(result.stdout)["domain"] == "atlas-atlas"
    result = runner.invoke(main, ["export", "csv", "--memory", str(tmp_path / "csv")])
    assert result.exit_code == 0 and (tmp_path / "csv" / "gaps.csv").is_file()
