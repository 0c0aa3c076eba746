"""The API documents itself offline: /docs and /redoc load their scripts and styles from this
server (no CDN), and every JSON route has a summary, a description and a response schema."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from vpr_assets.api.server import create_app


@pytest.fixture
def client(tmp_path):
    (tmp_path / "thumbnails").mkdir()
    with TestClient(create_app(tmp_path), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_load_every_asset_from_this_server(client, page):
    r = client.get(page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', r.text) + re.findall(r"url:\s*'([^']+)'", r.text)
    assets = [u for u in refs if u.endswith((".js", ".css"))]
    assert assets, r.text[:500]
    assert not [u for u in refs if u.startswith(("http://", "https://", "//"))], refs
    for url in assets:
        got = client.get(url)
        assert got.status_code == 200 and len(got.content) > 1000, url


def test_every_api_route_is_described_with_its_response_schema(client):
    spec = client.get("/openapi.json").json()
    api = {(path, method): op for path, ops in spec["paths"].items() for method, op in ops.items()
           if path.startswith("/api/")}
    assert {("/api/health", "get"), ("/api/search", "post"), ("/api/landmark", "get")} <= set(api)
    for (path, method), op in api.items():
        assert op.get("summary") and op.get("description"), (path, method)
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in ok, (path, ok)
    schemas = spec["components"]["schemas"]
    assert {"SearchResult", "LandmarkSearchResult", "Health", "ErrorBody"} <= set(schemas)
    assert "results" in schemas["SearchResult"]["properties"]
    assert spec["paths"]["/api/search"]["post"]["responses"]["415"]["content"]["application/json"]["schema"] \
        == {"$ref": "#/components/schemas/ErrorBody"}
    params = {p["name"]: p for p in spec["paths"]["/api/landmark"]["get"]["parameters"]}
    assert params["name"].get("description") and params["k"].get("description")
    assert params["k"]["schema"]["minimum"] == 1 and params["k"]["schema"]["maximum"] == 200


def test_k_out_of_bounds_is_refused_before_the_engine(client):
    r = client.get("/api/landmark", params={"name": "tower bridge", "k": 0})
    assert r.status_code == 422 and r.json()["error"] == "invalid_parameter" and "k" in r.json()["detail"]
