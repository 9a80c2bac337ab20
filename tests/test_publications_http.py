"""``POST /publications`` over real HTTP: the bearer token, the size limit, formats by Content-Type, the report."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from conftest import TOKEN

DATA = Path(__file__).parent / "data" / "loading"
LIMIT = 64 * 1024


@pytest.fixture
def app_config(app_config):
    return {**app_config, "MAX_CONTENT_LENGTH": LIMIT}


def _store(app):
    return app.extensions["mfmkg"].store


def _post(server, body: bytes, ctype: str, token: str | None = TOKEN, **params):
    headers = {"Content-Type": ctype}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(server.url + "/publications", data=body, headers=headers, params=params, timeout=30)


def test_the_token_is_required(live_server, app):
    body = (DATA / "figstep.bib").read_bytes()
    before = _store(app).stats()
    for token in (None, "wrong-token", TOKEN + "x", ""):
        r = _post(live_server, body, "application/x-bibtex", token=token)
        assert r.status_code == 401
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert r.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert _store(app).stats() == before


@pytest.mark.parametrize("name,ctype", [
    ("figstep.bib", "application/x-bibtex"), ("figstep.csv", "text/csv"), ("figstep.json", "application/json"),
    ("figstep.jsonl", "application/x-ndjson"), ("figstep.csl.json", "application/json"),
    ("figstep.csl.json", "application/vnd.citationstyles.csl+json"), ("figstep.atom", "application/atom+xml"),
    ("figstep.md", "text/markdown; charset=utf-8"),
])
def test_each_format_loads_by_content_type(live_server, app, name, ctype):
    r = _post(live_server, (DATA / name).read_bytes(), ctype, source="up")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["ok"] and body["summary"]["entries"] == 1
    assert body["sources"][0]["source"] == "up" and body["sources"][0]["status"] == "loaded"
    again = _post(live_server, (DATA / name).read_bytes(), ctype, source="up")
    assert again.status_code == 200 and again.json()["sources"][0]["status"] == "unchanged"


def test_the_default_source_name_is_the_content_hash(live_server):
    body = (DATA / "figstep.jsonl").read_bytes()
    name = _post(live_server, body, "application/x-ndjson").json()["sources"][0]["source"]
    assert name.startswith("upload-") and _post(live_server, body, "application/x-ndjson").status_code == 200


def test_oversize_bodies_get_413_and_store_nothing(live_server, app):
    before = _store(app).stats()
    r = _post(live_server, b"@misc{x, title={" + b"a" * (LIMIT + 10) + b"}}", "application/x-bibtex")
    assert r.status_code == 413 and r.headers["Content-Type"].startswith("application/problem+json")
    assert _store(app).stats() == before


def test_unknown_content_type_is_415(live_server):
    r = _post(live_server, b"GIF89a", "image/gif")
    assert r.status_code == 415 and "not a literature format" in r.json()["detail"]


@pytest.mark.parametrize("body,ctype,where", [
    (b"@article{a, title={One}, year={2023}}\n@article{b, title={Two\n", "application/x-bibtex", "bibtex:2"),
    (b'[{"title": "One", "year": 2023}, {"title": ', "application/json", "json:1"),
    (b'{"title": "One", "year": 2023}\n{"title": "Two", "year": "soon"}\n', "application/x-ndjson", "jsonl:2"),
    (b"\x00\x01\x02binary", "text/csv", "csv:1"),
])
def test_bad_input_is_a_problem_with_file_and_line_and_stores_nothing(live_server, app, body, ctype, where):
    before = _store(app).stats()
    r = _post(live_server, body, ctype, source="bad")
    assert r.status_code == 400 and r.headers["Content-Type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == 400 and problem["detail"].startswith("nothing was stored")
    fmt, line = where.split(":")
    assert any(e["file"].startswith("bad.") and e["line"] == int(line) for e in problem["errors"]), problem
    assert problem["report"]["sources"][0]["status"] == "failed"
    assert _store(app).stats() == before


def test_dry_run_and_skip_invalid(live_server, app):
    body = b'{"title": "One", "year": 2023}\n{"title": "Two", "year": "soon"}\n'
    before = _store(app).stats()
    r = _post(live_server, (DATA / "figstep.jsonl").read_bytes(), "application/x-ndjson", dry_run="true")
    assert r.status_code == 200 and r.json()["sources"][0]["status"] == "dry-run"
    assert _store(app).stats() == before
    r = _post(live_server, body, "application/x-ndjson", skip_invalid="1", source="partial")
    assert r.status_code == 201 and r.json()["summary"]["skipped"] == 1 and r.json()["summary"]["entries"] == 1


def test_writes_are_refused_without_a_configured_token(tmp_path):
    from mfmkg.service import create_app

    app = create_app({"MEMORY": True, "TESTING": True, "WRITE_TOKEN": None, "DATA_DIR": str(tmp_path)})
    r = app.test_client().post("/publications", data=b"x", content_type="text/csv",
                               headers={"Authorization": "Bearer anything"})
    assert r.status_code == 401 and "no write token is configured" in r.json["detail"]
