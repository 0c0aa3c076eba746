"""`vpr serve` for real: a uvicorn subprocess on a loopback port, real HTTP requests, and the
upload page driven in a headless Chromium (skipped when /usr/bin/chromium is absent)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import httpx
import pytest

from .conftest import MAX_UPLOAD_MB

pytestmark = pytest.mark.slow  # session store + a server subprocess

CHROMIUM = Path("/usr/bin/chromium")


def test_health(server):
    r = httpx.get(server + "/api/health", timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["index_size"] > 0 and body["landmarks"] >= 2
    assert body["threshold_source"] == "evaluation (dagster)"


def test_search_by_upload(server, store):
    card = store.eval_card("tower_bridge_102.jpg")
    with open(card, "rb") as fh:
        r = httpx.post(server + "/api/search", params={"k": 4}, files={"file": (card.name, fh, "image/jpeg")}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["prediction"] == "Tower Bridge" and body["k"] == 4 and len(body["results"]) == 4
    top = body["results"][0]
    assert top["file_name"].startswith("tower_bridge") and top["thumbnail_url"].startswith("/thumbnails/")
    thumb = httpx.get(server + top["thumbnail_url"], timeout=30)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"


def test_non_landmark_upload(server, store):
    card = store.eval_card("greeting_101.jpg")
    r = httpx.post(server + "/api/search", files={"file": (card.name, card.read_bytes(), "image/jpeg")}, timeout=60)
    assert r.status_code == 200 and r.json()["prediction"] == "non-landmark"


def test_oversized_upload_is_refused_413(server):
    big = os.urandom(int(MAX_UPLOAD_MB * 1024 * 1024) + 200_000)
    r = httpx.post(server + "/api/search", files={"file": ("big.jpg", big, "image/jpeg")}, timeout=60)
    assert r.status_code == 413
    assert r.json()["error"] == "too_large" and "limit" in r.json()["detail"]

    body = (b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n" + big + b"\r\n--b0undary--\r\n")

    def chunks():  # a generator: sent chunked, without Content-Length, so it is counted while it streams
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    r = httpx.post(server + "/api/search", content=chunks(), timeout=60,
                   headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"


def test_too_many_pixels_is_refused_413(server):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (12000, 8000)).save(buf, format="PNG")  # 96 Mpx, ~100 kB compressed: a pixel bomb
    r = httpx.post(server + "/api/search", files={"file": ("bomb.png", buf.getvalue(), "image/png")}, timeout=60)
    assert r.status_code == 413 and r.json()["error"] == "too_many_pixels", r.text


def test_non_image_upload_is_refused(server):
    r = httpx.post(server + "/api/search", files={"file": ("notes.txt", b"hello, not a picture", "text/plain")}, timeout=30)
    assert r.status_code == 415
    assert r.json()["error"] == "unsupported_media_type" and "JPEG" in r.json()["detail"]
    r = httpx.post(server + "/api/search", files={"file": ("fake.jpg", b"GIF89a but not really" * 10, "image/jpeg")},
                   timeout=30)
    # the content decides, not the declared type (issue #15): bytes that are no image are 415
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type", r.text
    r = httpx.post(server + "/api/search", timeout=30)
    assert r.status_code == 400 and r.json()["error"] == "missing_file"


def test_landmark_endpoint_and_bad_parameters(server):
    r = httpx.get(server + "/api/landmark", params={"name": "tour eiffel", "k": 2}, timeout=30)
    assert r.status_code == 200
    m = r.json()["matches"][0]
    assert m["name"] == "Tour Eiffel à Paris" and len(m["cards"]) == 2 and m["cards"][0]["thumbnail_url"]
    assert httpx.get(server + "/api/landmark", params={"name": " "}, timeout=30).status_code == 400
    r = httpx.get(server + "/api/landmark", params={"name": "x", "k": "many"}, timeout=30)
    assert r.status_code == 422 and r.json()["error"] == "invalid_parameter"


def _raw_get(base: str, target: str) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (clients would normalise '..' away)."""
    import socket
    import urllib.parse

    u = urllib.parse.urlsplit(base)
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("path", ["../catalog.duckdb", "..%2f..%2fcatalog.duckdb", "%2e%2e/tables/raw_scans",
                                  "..%2f..%2f..%2f..%2f..%2fetc%2fpasswd", "/etc/passwd", "xx/missing.jpg"])
def test_thumbnails_cannot_escape_their_folder(server, store, path):
    status, body = _raw_get(server, "/thumbnails/" + path)
    assert status == 404, body[:200]
    assert b"SQLite" not in body and b"root:" not in body and b"PAR1" not in body


def test_thumbnail_guard_allows_real_thumbnails_only(server, store):
    from vpr_assets.storage import Catalog

    rel = Catalog(store.home).read("raw_scans").thumbnail.iloc[0]
    status, body = _raw_get(server, "/" + rel)
    assert status == 200 and body[:2] == b"\xff\xd8"
    status, _ = _raw_get(server, "/thumbnails/" + rel.split("/", 1)[1] + "/../../catalog.duckdb")
    assert status == 404


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium): "
                                                  "apt-get install -y chromium")
def test_upload_page_in_a_real_browser(server, store):
    from playwright.sync_api import sync_playwright

    card = store.eval_card("eiffel_101.jpg")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page()
            page.goto(server + "/", timeout=30_000)
            assert page.title() == "Postcard search"
            page.set_input_files("#file", str(card))
            page.fill("input[name=k]", "5")
            with page.expect_navigation(timeout=60_000):
                page.click("#search-button")
            assert page.inner_text("#prediction") == "Tour Eiffel à Paris"
            cards = page.locator("#results .result")
            assert cards.count() == 5
            assert "eiffel_" in cards.first.inner_text() and "score 0." in cards.first.inner_text()
            page.wait_for_function(
                "() => [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)",
                timeout=30_000)
            widths = page.eval_on_selector_all("#results img", "els => els.map(e => e.naturalWidth)")
            assert len(widths) == 5 and min(widths) > 50  # the thumbnails really loaded

            # by name: type a place, see its cards
            page.fill("#name", "TOWER bridge")
            with page.expect_navigation(timeout=30_000):
                page.press("#name", "Enter")
            assert "Tower Bridge" in page.inner_text("h3.landmark")
            page.wait_for_function("() => [...document.querySelectorAll('.results img')].every(i => i.complete && i.naturalWidth > 0)",
                                   timeout=30_000)
            assert page.locator(".results img").count() >= 5

            # a non-image file is refused with a readable message
            bad = store.home / "not_a_picture.txt"
            bad.write_text("plain text")
            page.goto(server + "/", timeout=30_000)
            page.set_input_files("#file", str(bad))
            with page.expect_navigation(timeout=30_000):
                page.click("#search-button")
            assert "not accepted" in page.inner_text("#error") or "not a usable image" in page.inner_text("#error")
        finally:
            browser.close()
