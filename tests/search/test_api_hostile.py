"""Issue #15, finding 9: the API under hostile requests, on an empty data root (no index needed:
every refusal below happens before the index is loaded or the search lock is taken)."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.badinput import corrupt_avif_bytes, jpeg_bytes, photo
from vpr_assets.api.server import create_app


@pytest.fixture
def client(tmp_path):
    (tmp_path / "thumbnails").mkdir()
    with TestClient(create_app(tmp_path), raise_server_exceptions=False) as c:
        yield c


def _is_json_error(r, status: int, error: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    assert body["error"] and body["detail"]
    if error:
        assert body["error"] == error, body
    return body


@pytest.mark.parametrize("path", ["/thumbnails/%00.jpg", "/thumbnails/a%00b.jpg", "/thumbnails/" + "a" * 300 + ".jpg",
                                  "/thumbnails/" + "b/" * 2000 + "c.jpg"])
def test_hostile_thumbnail_names_are_json_404s(client, path):
    _is_json_error(client.get(path), 404, "not_found")


def test_a_corrupt_image_upload_is_a_json_400_not_a_plain_500(client):
    bad = corrupt_avif_bytes()
    if bad is None:
        pytest.skip("no AVIF support in this Pillow")
    body = _is_json_error(client.post("/api/search", files={"file": ("x.avif", bad, "image/avif")}), 400)
    assert "RuntimeError" in body["detail"]


def test_the_declared_type_is_ignored_and_the_content_decides(client):
    buf = io.BytesIO()
    photo(1).save(buf, format="AVIF")
    for declared in ("image/avif", "application/octet-stream", "text/plain"):
        # a real AVIF passes the upload checks under any declared type (then: no index yet, 503)
        _is_json_error(client.post("/api/search", files={"file": ("x", buf.getvalue(), declared)}), 503, "no_index")
    # text declared as a JPEG is still text
    body = _is_json_error(client.post("/api/search", files={"file": ("x.jpg", b"just text " * 50, "image/jpeg")}),
                          415, "unsupported_media_type")
    assert "JPEG" in body["detail"]
    # an exotic format Pillow can open is not a query format (the fuzz crashers live there)
    buf = io.BytesIO()
    photo(1).save(buf, format="PCX")
    _is_json_error(client.post("/api/search", files={"file": ("x.jpg", buf.getvalue(), "image/jpeg")}), 415)


def test_a_costly_16_bit_png_is_refused_from_its_header_before_the_search_lock(client):
    """A ~150 KB 16-bit PNG just under the pixel limit cost ~2 GB and 8-10 s under the lock."""
    arr = np.zeros((7_900, 10_000), dtype=np.uint16)  # 79 Mpx: under the 80 Mpx limit
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=9)
    data = buf.getvalue()
    assert len(data) < 1_000_000
    import threading

    engine = client.app.state.engine
    answer = {}

    def post():
        answer["r"] = client.post("/api/search", files={"file": ("big.png", data, "image/png")})

    assert engine._lock.acquire(timeout=5)  # another search holds the lock: a refusal must not wait for it
    try:
        t0 = time.monotonic()
        worker = threading.Thread(target=post, daemon=True)
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "the refusal waited for the search lock"
        assert time.monotonic() - t0 < 10
    finally:
        engine._lock.release()
    worker.join(120)
    body = _is_json_error(answer["r"], 413, "too_costly")
    assert "MiB" in body["detail"]


def test_a_one_letter_name_search_is_refused(client):
    for q in ("a", "é", "x y"):
        _is_json_error(client.get("/api/landmark", params={"name": q}), 400, "name_too_short")


def test_a_query_file_over_the_byte_cap_is_not_read_whole(tmp_path):
    from vpr_assets.core.search import ImageTooLargeError, SearchConfig, SearchEngine

    big = tmp_path / "big.jpg"
    with open(big, "wb") as fh:
        fh.write(jpeg_bytes(photo(1)))
        fh.truncate(60 * 1024 * 1024)  # sparse: 60 MB on paper
    with pytest.raises(ImageTooLargeError) as err:
        SearchEngine(tmp_path, SearchConfig()).search_image(big)
    assert err.value.reason == "too_large"
