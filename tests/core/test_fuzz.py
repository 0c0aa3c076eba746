"""Fuzz harness (issue #15): Hypothesis over every parser that reads untrusted bytes.

Targets: the image decoder (mutated and truncated files of every format we can write), the
descriptions reader, the evaluation manifest reader, the upload endpoint, and the retrieval
metrics (bounded by definition). The only outcomes allowed are a result or the parser's own
refusal (ImageRejected, a reject row, ValueError, a JSON 4xx); anything else is a crash.

CI runs a short, deterministic budget (derandomised, VPR_FUZZ_EXAMPLES=40 examples per target,
a few seconds each). By hand, longer and random:

    VPR_FUZZ_EXAMPLES=5000 VPR_FUZZ_RANDOM=1 .venv/bin/python -m pytest tests/core/test_fuzz.py -q

A crasher Hypothesis finds is printed minimised: keep its bytes in tests/fuzz_crashers/ (the image
ones are replayed by tests/ingestion/test_hostile_inputs.py) or as an explicit example here.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.badinput import photo

EXAMPLES = int(os.environ.get("VPR_FUZZ_EXAMPLES", "40"))
settings.register_profile(
    "vpr_fuzz", max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("VPR_FUZZ_RANDOM") != "1",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    database=None,  # no .hypothesis/ folder in the repository; crashers are kept as files or @example
)
fuzz = settings.get_profile("vpr_fuzz")

# formats Pillow can write, each a seed the mutations start from (AVIF/WebP/JPEG 2000 where built in)
SEED_FORMATS = ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "AVIF", "JPEG2000", "TGA", "PCX", "ICO", "SGI", "PPM",
                "IM", "DDS", "QOI", "SPIDER", "BLP", "MSP", "XBM", "PALM", "EPS", "DIB"]


@lru_cache(maxsize=None)
def seeds() -> dict[str, bytes]:
    out = {}
    im = photo(3, (40, 30))
    for fmt in SEED_FORMATS:
        buf = io.BytesIO()
        try:
            src = im.convert("F") if fmt == "SPIDER" else im.convert("1") if fmt in ("MSP", "XBM", "PALM") else im
            src.save(buf, format=fmt)
        except Exception:  # noqa: BLE001 - a plugin this Pillow cannot write (or needs Ghostscript)
            continue
        out[fmt] = buf.getvalue()
    # 16-bit and palette variants exercise the conversion paths
    for name, img in (("PNG16", Image.fromarray(np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50)),
                      ("PNGP", im.convert("P", palette=Image.ADAPTIVE, colors=16))):
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        out[name] = buf.getvalue()
    return out


@st.composite
def mutated_image(draw) -> bytes:
    fmt = draw(st.sampled_from(sorted(seeds())))
    data = bytearray(seeds()[fmt])
    head = min(len(data), draw(st.sampled_from([64, 256, len(data)])))  # headers are where parsers break
    for _ in range(draw(st.integers(1, 6))):
        data[draw(st.integers(0, head - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@fuzz
@given(mutated_image())
def test_fuzz_decoder_returns_an_image_or_refuses(data):
    from vpr_assets.core.images.decode import ImageRejected, decode_image

    try:
        decoded = decode_image(data, max_pixels=4_000_000)
    except ImageRejected as exc:
        assert exc.reason and exc.detail is not None
        return
    assert decoded.image.mode == "RGB" and decoded.width > 0 and decoded.height > 0


@fuzz
@given(st.one_of(st.binary(max_size=2000),
                 st.text(alphabet=st.sampled_from(list('abc.jpg,"\n\r\t \\é€\x00;')), max_size=400).map(
                     lambda t: t.encode("utf-8")),
                 st.lists(st.tuples(st.sampled_from(["a.jpg", "b.jpg", "ghost.jpg", "", '"a.jpg']),
                                    st.text(max_size=40)), max_size=8).map(
                     lambda rows: ("file,description\n" + "".join(f"{f},{d}\n" for f, d in rows)).encode("utf-8",
                                                                                                          "surrogatepass"))))
@example(b'file,description\na.jpg,"unterminated\nb.jpg,next\n')
@example(b"file,description\na.jpg," + b"x" * 140_000 + b"\n")
def test_fuzz_descriptions_reader_never_raises(tmp_path_factory, raw):
    from vpr_assets.core.ingest import MAX_DESCRIPTION_CHARS, read_descriptions

    folder = tmp_path_factory.mktemp("desc")
    (folder / "descriptions.csv").write_bytes(raw)
    known = {"a.jpg", "b.jpg"}
    descriptions, problems = read_descriptions(folder / "descriptions.csv", known)
    assert set(descriptions) <= known
    assert all(len(d) <= MAX_DESCRIPTION_CHARS for d in descriptions.values())
    assert {reason for _, reason, _ in problems} <= {
        "bad_description_row", "unknown_file_description", "duplicate_description", "description_encoding",
        "description_too_long", "bad_descriptions_file"}


@fuzz
@given(st.text(alphabet=st.sampled_from(list("fileabl\tnone.jpg/\n\r \"x")), max_size=300))
def test_fuzz_manifest_reader_reads_or_says_why(tmp_path_factory, text):
    from vpr_assets.core.evaluation import read_manifest

    folder = tmp_path_factory.mktemp("manifest")
    (folder / "a.jpg").write_bytes(b"x")
    (folder / "b.jpg").write_bytes(b"y")
    (folder / "m.tsv").write_text(text)
    try:
        m = read_manifest(folder / "m.tsv")
    except ValueError:
        return
    assert len(m.files) == len(m.labels) == len(set(os.path.normpath(f) for f in m.files)) >= 1


@pytest.fixture(scope="module")
def api_client(tmp_path_factory):
    from fastapi.testclient import TestClient

    from vpr_assets.api.server import create_app

    home = tmp_path_factory.mktemp("api_home")
    with TestClient(create_app(home), raise_server_exceptions=False) as client:
        yield client


@fuzz
@given(mutated_image(), st.sampled_from(["image/jpeg", "image/avif", "application/octet-stream", "text/plain", ""]))
def test_fuzz_upload_endpoint_answers_json_and_never_500(api_client, data, declared):
    r = api_client.post("/api/search", files={"file": ("x", data, declared)} if declared else {"file": ("x", data)})
    assert r.status_code in (400, 413, 415, 503), (r.status_code, r.text)  # 503: decoded fine, no index here
    body = r.json()
    assert body["error"] and body.get("detail") is not None


@fuzz
@given(st.dictionaries(st.sampled_from("abcdefgh"), st.sampled_from(["x", "y", "none"]), min_size=1),
       st.data())
def test_fuzz_retrieval_figures_are_between_zero_and_one(labels, data):
    from vpr_assets.core.metrics import evaluate_rankings

    ids = sorted(labels)
    rankings = {q: data.draw(st.lists(st.sampled_from(ids), max_size=12)) for q in ids}
    out = evaluate_rankings(rankings, labels, ks=(1, 3, 5))
    for key, value in out.items():
        if key.split("@")[0] in ("P", "Recall", "RecallCapped", "mAP", "R-precision", "Accuracy"):
            assert np.isnan(value) or 0.0 <= value <= 1.0 + 1e-12, (key, value)
