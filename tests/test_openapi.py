"""The generated OpenAPI document covers every route and named query, and the service honours it (schemathesis)."""

from __future__ import annotations

import re

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance

from mfmkg.named_queries import load_queries

_ARG = re.compile(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>")


@pytest.fixture
def document(live_server):
    resp = requests.get(live_server.url + "/openapi.json", timeout=30)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    return resp.json()


def expected_paths(app) -> set[tuple[str, str]]:
    """(path, method) for every rule of the URL map; the named-query rule once per shipped query."""
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = _ARG.sub(lambda m: "{" + m.group(1) + "}", rule.rule)
        methods = {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}}
        names = load_queries() if rule.endpoint == "queries.run_query" else [None]
        for name in names:
            for m in methods:
                out.add((path.replace("{name}", name) if name else path, m))
    return out


def test_every_route_is_documented(app, document):
    assert document["openapi"].startswith("3.")
    documented = {(p, m) for p, ops in document["paths"].items() for m in ops}
    missing = expected_paths(app) - documented
    assert not missing
    for must in ("/sparql", "/gaps", "/-/health", "/openapi.json", "/queries", "/threats/{id}",
                 "/publications/{id}.{ext}", "/queries/gaps.{ext}"):
        assert must in document["paths"], must
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", sorted(load_queries()))
def test_every_named_query_and_parameter_is_documented(live_server, document, name):
    query = load_queries()[name]
    listed = {q["name"]: q for q in requests.get(live_server.url + "/queries", timeout=30).json()["queries"]}
    for path in (f"/queries/{name}", f"/queries/{name}.{{ext}}"):
        op = document["paths"][path]["get"]
        params = {p["name"]: p for p in op["parameters"] if p["in"] == "query"}
        assert {"_size", "_next"} <= set(params)
        for p in query.params:
            doc = params[p.name]
            assert doc["required"] is p.required
            expected_type = {"integer": "integer", "boolean": "boolean"}.get(p.type, "string")
            assert doc["schema"]["type"] == expected_type
            meta = next(m for m in listed[name]["params"] if m["name"] == p.name)
            if p.type.startswith(("term(", "enum(")):
                assert doc["schema"]["enum"] == meta["values"] and doc["schema"]["enum"]
    ext = next(p for p in document["paths"][f"/queries/{name}.{{ext}}"]["get"]["parameters"] if p["name"] == "ext")
    assert ext["in"] == "path" and ext["schema"]["enum"] == ["json", "csv", "tsv"]


def test_gaps_route_documents_its_filters_with_enums(document):
    params = {p["name"]: p for p in document["paths"]["/gaps"]["get"]["parameters"]}
    assert {"modality", "flow", "axis", "level"} <= set(params)
    assert "Audio" in params["modality"]["schema"]["enum"]


def test_media_types_and_problems_are_documented(document):
    threats = document["paths"]["/threats"]["get"]["responses"]
    assert set(threats["200"]["content"]) == {"application/json", "text/csv"}
    assert "application/problem+json" in threats["default"]["content"]
    suffixed = document["paths"]["/queries/gaps.{ext}"]["get"]["responses"]["200"]["content"]
    assert set(suffixed) == {"application/json", "text/csv", "text/tab-separated-values"}
    assert "application/sparql-results+json" in document["paths"]["/sparql"]["get"]["responses"]["200"]["content"]
    assert "requestBody" in document["paths"]["/sparql"]["post"]


# -- the service against its own document ----------------------------------------------------------------------------
def run_operation(operation, base_url: str) -> None:
    """Up to 20 generated requests for one operation (derandomized, so a failure reproduces), each checked for
    no 5xx and a documented media type."""

    @given(case=operation.as_strategy())
    @settings(max_examples=20, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(base_url=base_url, checks=[not_a_server_error, content_type_conformance], timeout=60)

    check()


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors_and_only_documented_media_types(live_server):
    # schemathesis' pytest plugin (from_fixture) reads a node attribute pytest 9 removed, so the operations are run
    # here with its Python API: one Hypothesis test per operation, failures collected and reported together.
    api = schemathesis.openapi.from_url(live_server.url + "/openapi.json")
    failures, ran = [], 0
    for result in api.get_all_operations():
        operation = result.ok()
        ran += 1
        try:
            run_operation(operation, live_server.url)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported with the operation's label below
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert ran >= 40
    assert not failures, "\n\n".join(failures)
