"""Live ontology edits on a running ``mfmkg serve``: good edits are swapped in, broken ones are reported and ignored."""

from __future__ import annotations

import signal
import time

import pytest
import requests

from conftest import TOKEN, start_serve, stop

PREFIXES = """@prefix mfm: <https://w3id.org/mfmkg/ont#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
"""
GOOD = PREFIXES + """
mfm:MisleadingAlignmentAttack a owl:Class ;
    rdfs:subClassOf mfm:MisleadingThreat ;
    rdfs:label "misleading threat: cross-modal alignment" ;
    skos:definition "Attacks that break the alignment between modalities." ;
    mfm:onFlow mfm:PredictionFlow ;
    mfm:onAxis mfm:Signal ;
    mfm:level mfm:ModelLevel ;
    mfm:hasGoal mfm:GoalAdversarial ;
    mfm:manipulatesModality mfm:Image , mfm:Audio .
"""
BROKEN = GOOD.replace('"Attacks that break', '"Attacks that\nbreak')  # a newline inside a "..." literal


def gap_threats(url: str) -> set[str]:
    return {r["threat"] for r in requests.get(url + "/gaps.json", timeout=10).json()["rows"]}


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def server(tmp_path):
    ext = tmp_path / "ext"
    ext.mkdir()
    proc, url = start_serve(["--memory", "--extensions-dir", str(ext)],
                            env={"MFMKG_RELOAD_INTERVAL": "0.3", "MFMKG_WRITE_TOKEN": TOKEN})
    yield proc, url, ext
    stop(proc)


NEW = "https://w3id.org/mfmkg/ont#MisleadingAlignmentAttack"


def test_good_edit_is_served_broken_edit_is_reported_then_fixed(server):
    proc, url, ext = server
    assert NEW not in gap_threats(url)
    (ext / "mine.ttl").write_text(GOOD)
    wait_for(lambda: NEW in gap_threats(url))

    (ext / "mine.ttl").write_text(BROKEN)
    health = wait_for(lambda: (h := requests.get(url + "/-/health").json())["status"] != "ok" and h)
    error = health["ontology_errors"][0]
    assert error["file"].endswith("mine.ttl") and error["line"] == 9
    assert NEW in gap_threats(url), "the last good graph keeps being served"

    (ext / "mine.ttl").write_text(GOOD.replace("cross-modal alignment", "alignment"))
    wait_for(lambda: requests.get(url + "/-/health").json()["status"] == "ok")
    assert NEW in gap_threats(url)


def test_edit_failing_a_quality_check_is_rejected_with_the_iri(server):
    proc, url, ext = server
    (ext / "mine.ttl").write_text(GOOD.replace("    mfm:onFlow mfm:PredictionFlow ;\n", ""))
    health = wait_for(lambda: (h := requests.get(url + "/-/health").json())["status"] != "ok" and h)
    assert any(e.get("iri") == NEW for e in health["ontology_errors"])
    assert NEW not in gap_threats(url)


@pytest.mark.parametrize("how", ["sighup", "endpoint"])
def test_forced_reload(tmp_path, how):
    ext = tmp_path / "ext"
    ext.mkdir()
    proc, url = start_serve(["--memory", "--extensions-dir", str(ext)],
                            env={"MFMKG_RELOAD_INTERVAL": "0", "MFMKG_WRITE_TOKEN": TOKEN})
    try:
        (ext / "mine.ttl").write_text(GOOD)
        time.sleep(0.5)
        assert NEW not in gap_threats(url), "polling is off: nothing changes until asked"
        if how == "sighup":
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: NEW in gap_threats(url))
        else:
            assert requests.post(url + "/-/reload").status_code == 401
            resp = requests.post(url + "/-/reload", headers={"Authorization": f"Bearer {TOKEN}"})
            assert resp.status_code == 200 and resp.json()["outcome"] == "reloaded"
            assert NEW in gap_threats(url)
    finally:
        stop(proc)
