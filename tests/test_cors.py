"""CORS is opt-in: no Access-Control-* header unless CORS_ORIGINS lists the request's origin."""

from __future__ import annotations

import pytest
import requests

from conftest import LiveServer

ORIGIN = "https://analyst.example.org"
PATHS = ["/threats", "/queries/gaps.csv", "/sparql?query=ASK%7B%7D", "/-/health", "/threats/NoSuch"]


@pytest.fixture
def serve(app_config):
    """Start a live server with configuration overrides; returns its URL."""
    from mfmkg.service import create_app

    servers = []

    def start(**overrides):
        srv = LiveServer(create_app({**app_config, **overrides}))
        servers.append(srv)
        return srv.url

    yield start
    for srv in servers:
        srv.close()


def test_off_by_default(live_server):
    for path in PATHS:
        resp = requests.get(live_server.url + path, headers={"Origin": ORIGIN}, timeout=30)
        assert not [h for h in resp.headers if h.lower().startswith("access-control-")], path


@pytest.mark.parametrize("origins", [[ORIGIN], f"https://other.example, {ORIGIN}"])
def test_listed_origin_is_allowed_on_every_route(serve, origins):
    url = serve(CORS_ORIGINS=origins)
    for path in PATHS:
        resp = requests.get(url + path, headers={"Origin": ORIGIN}, timeout=30)
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN, path
        assert "Link" in resp.headers["Access-Control-Expose-Headers"]
        assert "Origin" in resp.headers["Vary"]
        assert "Access-Control-Allow-Credentials" not in resp.headers


def test_other_origins_get_no_cors_headers(serve):
    url = serve(CORS_ORIGINS=[ORIGIN])
    resp = requests.get(url + "/threats", headers={"Origin": "https://evil.example"}, timeout=30)
    assert "Access-Control-Allow-Origin" not in resp.headers and "Origin" in resp.headers["Vary"]
    assert "Access-Control-Allow-Origin" not in requests.get(url + "/threats", timeout=30).headers


def test_wildcard_and_preflight(serve):
    url = serve(CORS_ORIGINS="*")
    resp = requests.options(url + "/sparql", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                                                      "Access-Control-Request-Headers": "content-type"}, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert resp.headers["Access-Control-Allow-Headers"] == "content-type"
