"""The collection browser in headless Chromium, on a copy of the session store: browse -> filter ->
card page; the map -> a landmark page -> a curator renames and locates it -> the next
landmark_clusters run -> both are visible; a curator decision on a card -> the next scan_quality
run -> the decision is visible. Keyboard (Tab/Enter) drives the filter form; a phone-width viewport has no
horizontal scroll. Set VPR_SCREENSHOTS=docs/screenshots to refresh the README's screenshots."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .conftest import PROJECT_ROOT, VPR, free_port

pytestmark = pytest.mark.slow  # session store + scan_quality (torch) + a server + Chromium

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def copied(store, tmp_path, monkeypatch):
    home, dh = tmp_path / "vpr_home", tmp_path / "dagster_home"
    shutil.copytree(store.home, home)
    shutil.copytree(store.dagster_home, dh)
    monkeypatch.setenv("VPR_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(dh))
    env = {**store.env, "VPR_HOME": str(home), "DAGSTER_HOME": str(dh)}
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(VPR + ["serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            try:
                if httpx.get(base + "/api/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "vpr serve did not answer"
            time.sleep(0.5)
        yield base, home
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _shot(page, name: str) -> None:
    folder = os.environ.get("VPR_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.jpg"), type="jpeg", quality=80, full_page=False)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)")
def test_browse_filter_card_decision_rerun_visible(copied):
    from playwright.sync_api import sync_playwright

    from vpr_assets.runner import materialize_partitions
    from vpr_assets.storage import Catalog

    base, home = copied
    batch = sorted(Catalog(home).read("raw_scans").batch.unique())[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/browse", timeout=30_000)
            total = page.locator("ul.grid li a[data-scan-id]").count()
            assert total > 0
            _shot(page, "browse")

            # filter by batch with the keyboard only
            page.focus("select[name=batch]")
            page.select_option("select[name=batch]", batch)
            page.keyboard.press("Tab")
            for _ in range(12):  # to the Filter button
                if page.evaluate("document.activeElement.type") == "submit":
                    break
                page.keyboard.press("Tab")
            with page.expect_navigation(timeout=30_000):
                page.keyboard.press("Enter")
            cards = page.locator("ul.grid li a[data-scan-id]")
            assert 0 < cards.count() < total and f"batch={batch}" in page.url

            # open a card: the scan is drawn, the record is there
            sid = cards.first.get_attribute("data-scan-id")
            with page.expect_navigation(timeout=30_000):
                cards.first.click()
            assert page.locator("section.scan svg image").count() == 1
            assert page.inner_text("#curator").strip() == "–"
            _shot(page, "card")

            # the offline map (this store has no OCR, so no places to draw: tests/search/test_browser.py
            # draws them) and a landmark page from its list
            page.goto(base + "/map", timeout=30_000)
            assert page.locator("svg[aria-label=map]").count() == 1
            assert not page.locator("script[src^=http], link[href^=http], image[href^=http]").count()
            _shot(page, "map")
            with page.expect_navigation(timeout=30_000):
                page.locator("main ul li a").first.click()
            assert page.locator("ul.grid li a[data-scan-id]").count() > 0 and "medoid" in page.inner_text("main")
            _shot(page, "landmark")

            # a curator renames the landmark and sets where it stands; the next landmark_clusters run
            # applies both, and the map draws it at the curator's point
            medoid = page.locator("ul.grid li a:has(.badge)").first.get_attribute("data-scan-id")
            rename = page.locator("form[aria-label=rename]")
            rename.locator("input[name=who]").fill("ana")
            rename.locator("input[name=name]").fill("Curated Landmark")
            with page.expect_navigation(timeout=30_000):
                rename.locator("button[value=rename]").click()
            assert "Recorded: rename" in page.inner_text(".notice")
            where = page.locator("form[aria-label='where it stands']")
            where.locator("input[name=who]").fill("ana")
            where.locator("input[name=lat]").fill("48.8584")
            where.locator("input[name=lon]").fill("2.2945")
            with page.expect_navigation(timeout=30_000):
                where.locator("button[value=locate]").click()
            logged = [r.inner_text().split("\t") for r in page.locator("#decisions tbody tr").all()]
            assert [(r[0], r[2]) for r in logged if "clusters_log.csv" in r[-1]] == [("rename", "ana"), ("locate", "ana")]
            assert materialize_partitions(["landmark_clusters"], [None])[0].success
            page.goto(f"{base}/cards/{medoid}", timeout=30_000)
            with page.expect_navigation(timeout=30_000):
                page.click("#landmark a")
            assert page.inner_text("h1") == "Curated Landmark"
            landmark_url = page.url
            assert "48.85840, 2.29450" in page.inner_text("#location") and "set by a curator" in page.inner_text("#location")
            page.goto(base + "/map", timeout=30_000)
            assert page.locator("rect.landmark.located").count() == 1

            # a curator rejects the card
            page.goto(f"{base}/cards/{sid}", timeout=30_000)
            page.fill("input[name=who]", "ana")
            with page.expect_navigation(timeout=30_000):
                page.click("button[value=reject]")
            assert "Recorded: reject" in page.inner_text(".notice")

            # the next scan_quality run of the batch applies it, and the page shows it
            assert materialize_partitions(["scan_quality", "derived_scans"], [batch])[0].success
            page.goto(f"{base}/cards/{sid}", timeout=30_000)
            assert page.inner_text("#curator").startswith("reject")
            assert "rejected" in page.inner_text("#quality") and "curator_reject" in page.inner_text("#quality")
            page.goto(f"{base}/browse?status=rejected", timeout=30_000)
            assert sid in [a.get_attribute("data-scan-id") for a in page.locator("ul.grid li a[data-scan-id]").all()]

            # phone width: no horizontal scroll on the grid, the card page and the landmark page
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            for url in (f"{base}/browse", f"{base}/cards/{sid}", landmark_url):
                phone.goto(url, timeout=30_000)
                assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), url
        finally:
            browser.close()
