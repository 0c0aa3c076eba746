"""The search HTTP API and a plain upload page, over `SearchEngine` (one per data root).

Endpoints:
    GET  /                      HTML page: upload a picture or type a place (server-rendered, no JS)
    POST /search                the page's upload form (multipart `file`, `k`) -> HTML results
    POST /api/search?k=10       multipart upload field `file` -> JSON (results + predicted landmark)
    GET  /api/landmark?name=..  JSON: matching landmarks with their cards
    GET  /api/health            JSON: what is loaded (503 while there is no index)
    GET  /thumbnails/{path}     the cards' thumbnails, from $VPR_HOME/thumbnails only
    GET  /api/cards, /api/cards/{scan_id}, /api/landmarks/{id}   the collection browser's JSON
    POST /api/decisions, /api/landmark-decisions                 curator actions (append-only logs)
    GET  /browse, /cards/{scan_id}, /landmarks/{id}, /map        the collection browser's pages
    GET  /scans/{scan_id}       a card's original scan

Pages are Jinja2 templates (templates/, autoescaped) with one stylesheet (static/); nothing is
loaded from the internet, /docs and /redoc included (fastapi-offline).

Why the limits are where they are: an upload is refused from its Content-Length header before
the body is read (413), a body without one is counted while it streams and cut at the limit; the
declared content type is ignored: the format is sniffed from the bytes and must be one of
`SearchConfig.query_formats` (415); the pixel count and the memory a decode costs (pixels x bytes
per pixel of the file's mode) are checked from the header before decoding and before the search
lock (413: decompression bombs, 16-bit giants); a file that still fails to decode is 400. Every
error, on every route and unexpected ones too, is JSON `{"error": reason, "detail": message}`
(the HTML page shows the message).

No `from __future__ import annotations` here: FastAPI reads the endpoint annotations at runtime.
"""

import json
import logging
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from vpr_assets.api.models import (
    ERRORS,
    ActionWritten,
    CardPage,
    CardRecord,
    CuratorAction,
    ErrorBody,
    Health,
    LandmarkAction,
    LandmarkRecord,
    LandmarkSearchResult,
    SearchResult,
)
from vpr_assets.core.images.decode import DEFAULT_MAX_PIXELS
from vpr_assets.core.search import BadImageError, ImageTooLargeError, NoIndexError, SearchConfig, SearchEngine, SearchError

API_VERSION = "1"  # bump when a response body changes incompatibly
MAX_K = SearchConfig().max_k  # FastAPI checks the bounds (422) before the engine is asked

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
THUMBNAIL_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
MULTIPART_OVERHEAD = 64 * 1024  # form boundaries, headers and the small `k` field


@dataclass
class ApiConfig:
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    search: SearchConfig = field(default_factory=SearchConfig)


class ApiError(Exception):
    def __init__(self, status: int, reason: str, detail: str):
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


def _error_response(status: int, reason: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": reason, "detail": detail}, status_code=status)


def _status_for(exc: SearchError) -> int:
    if isinstance(exc, NoIndexError):
        return 503
    if isinstance(exc, ImageTooLargeError):
        return 413
    return 400


class BodySizeLimit:
    """ASGI middleware: refuse POST bodies over `limit` bytes (header first, then while streaming)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.limit
            except ValueError:
                too_big = False
            if too_big:
                return await self._refuse(scope, receive, send, int(length))
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(seen)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge as exc:
            await self._refuse(scope, receive, send, exc.size)

    async def _refuse(self, scope, receive, send, size: int):
        resp = _error_response(413, "too_large", f"upload of {size:,} bytes refused: the limit is "
                                                 f"{self.limit - MULTIPART_OVERHEAD:,} bytes")
        await resp(scope, receive, send)


class _TooLarge(HTTPException):
    """Raised from the body stream; an HTTPException so FastAPI's body parsing lets it through."""

    def __init__(self, size: int):
        super().__init__(status_code=413, detail="too_large")
        self.size = size


def thumbnail_url(rel: Optional[str]) -> Optional[str]:
    """raw_scans.thumbnail (relative to the data root, under thumbnails/) -> its URL here."""
    if not rel:
        return None
    rel = str(rel).replace("\\", "/")
    if rel.startswith("thumbnails/"):
        rel = rel[len("thumbnails/"):]
    return "/thumbnails/" + urllib.parse.quote(rel)


def _add_urls(obj):
    """Add `thumbnail_url` / `representative_thumbnail_url` beside every thumbnail path."""
    if isinstance(obj, dict):
        out = {k: _add_urls(v) for k, v in obj.items()}
        for key in ("thumbnail", "representative_thumbnail"):
            if key in obj:
                out[key + "_url"] = thumbnail_url(obj[key])
        return out
    if isinstance(obj, list):
        return [_add_urls(v) for v in obj]
    return obj


def create_app(home: Path, config: Optional[ApiConfig] = None) -> FastAPI:
    """The app for one data root. The engine loads lazily (first request) and reloads on change."""
    config = config or ApiConfig()
    config.search.max_pixels = config.max_pixels
    home = Path(home).resolve()
    if config.search.ocr_tools is None:  # query captions read with the pipeline's tools
        from vpr_assets.paths import ocr_tools

        config.search.ocr_tools = ocr_tools(home)
    engine = SearchEngine(home, config.search)
    thumbs_root = (home / "thumbnails").resolve()
    # FastAPIOffline serves Swagger UI and ReDoc from files in its package: /docs works offline
    app = FastAPIOffline(title="vpr search", version=API_VERSION,
                         description="Search scanned postcards by picture or by place. Every error is JSON: "
                         "`{\"error\": reason, \"detail\": text}`.")
    app.state.engine = engine
    app.state.config = config
    app.add_middleware(BodySizeLimit, limit=config.max_upload_bytes + MULTIPART_OVERHEAD)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error_response(exc.status, exc.reason, exc.detail)

    @app.exception_handler(_TooLarge)
    async def _too_large(request: Request, exc: _TooLarge):
        return _error_response(413, "too_large", f"upload of {exc.size:,} bytes or more refused: the limit is "
                                                 f"{config.max_upload_bytes:,} bytes")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        reason = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "bad_request")
        return _error_response(exc.status_code, reason, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        msgs = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return _error_response(422, "invalid_parameter", msgs)

    @app.exception_handler(SearchError)
    async def _search_error(request: Request, exc: SearchError):
        return _error_response(_status_for(exc), exc.reason, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # never a plain-text 500
        log.exception("unexpected error on %s", request.url.path)
        return _error_response(500, "internal_error", f"{type(exc).__name__}: the server could not answer this request")

    def read_upload(file: Optional[UploadFile]) -> bytes:
        if file is None or not file.filename and not file.size:
            raise ApiError(400, "missing_file", "send the picture as multipart/form-data field 'file'")
        # the declared content type is not trusted either way: the format is sniffed from the bytes
        data = file.file.read(config.max_upload_bytes + 1)
        if len(data) > config.max_upload_bytes:
            raise ApiError(413, "too_large", f"the upload is larger than the limit of {config.max_upload_bytes:,} bytes")
        if not data:
            raise ApiError(400, "empty_file", "the uploaded file is empty")
        return data

    def do_search(file: Optional[UploadFile], k: int) -> dict:
        data = read_upload(file)
        try:
            return _add_urls(engine.search_image(data, k=k))
        except ImageTooLargeError:
            raise
        except BadImageError as exc:
            if exc.reason in ("not_an_image", "unsupported_format"):
                raise ApiError(415, "unsupported_media_type",
                               f"the upload is {exc}; send a JPEG, PNG, WebP, TIFF, BMP, GIF or AVIF image") from None
            raise ApiError(400, exc.reason, f"the upload is {exc}") from None

    # -- JSON API -------------------------------------------------------------------------------

    @app.get("/api/health", response_model=Health, responses={503: ERRORS[503]}, tags=["api"],
             summary="What is loaded: index, model, landmarks, threshold")
    def health():
        """Loads the index and model on first call; 503 with reason `no_index` before any index exists."""
        try:
            return engine.health()
        except NoIndexError as exc:
            return JSONResponse({"status": "no_index", "error": exc.reason, "detail": str(exc)}, status_code=503)

    @app.post("/api/search", response_model=SearchResult, tags=["api"], responses=ERRORS,
              summary="The cards most like a picture, and the landmark it shows")
    def api_search(file: Optional[UploadFile] = File(None, description="the picture (JPEG, PNG, WebP, TIFF, ...)"),
                   k: int = Query(10, ge=1, le=MAX_K, description="how many cards")):
        """Embeds the picture with the index's model (reading its printed caption when the model fuses
        text), returns the k nearest cards and a landmark vote, or `non-landmark` when the
        evaluation's rule (similarity + landmark score) or the threshold says so."""
        return do_search(file, k)

    @app.get("/api/landmark", response_model=LandmarkSearchResult, tags=["api"], responses=ERRORS,
             summary="Landmarks matching a name, with their cards")
    def api_landmark(name: str = Query("", description="landmark or place name; fuzzy, accent-insensitive"),
                     k: int = Query(50, ge=1, le=MAX_K, description="cards per landmark")):
        """Matches cluster names, their places and their cards' geo-words; each landmark's cards are
        ranked by similarity to its medoid card."""
        return _add_urls(engine.search_landmark(name, k=k))

    @app.get("/thumbnails/{path:path}", tags=["files"], summary="A card's thumbnail (JPEG/WebP under the data root)",
             responses={200: {"content": {"image/jpeg": {}}}, 404: {"model": ErrorBody}})
    def thumbnails(path: str):
        if "\x00" in path or len(path) > 512:  # a NUL or an over-long name is no thumbnail (was a plain 500)
            return _error_response(404, "not_found", "no such thumbnail")
        try:
            target = (thumbs_root / path).resolve()
            if not target.is_relative_to(thumbs_root) or target.suffix.lower() not in THUMBNAIL_SUFFIXES:
                return _error_response(404, "not_found", "no such thumbnail")
            if not target.is_file():
                return _error_response(404, "not_found", "no such thumbnail")
        except (OSError, ValueError):  # ENAMETOOLONG, ELOOP, ...
            return _error_response(404, "not_found", "no such thumbnail")
        return FileResponse(target, headers={"Cache-Control": "public, max-age=3600"})

    # -- HTML page ------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, tags=["pages"], summary="Search page (by name; upload form)")
    def page(name: str = Query(""), k: int = Query(10)):
        if not name.strip():
            return HTMLResponse(render_page())
        try:
            res = _add_urls(engine.search_landmark(name, k=max(1, min(k, 50))))
            return HTMLResponse(render_page(name=name, landmark_result=res))
        except SearchError as exc:
            return HTMLResponse(render_page(name=name, error=str(exc)), status_code=_status_for(exc))

    @app.post("/search", response_class=HTMLResponse, tags=["pages"], summary="Search page answer for an upload")
    def page_search(file: Optional[UploadFile] = File(None), k: int = Form(10)):
        try:
            res = do_search(file, k)
            return HTMLResponse(render_page(image_result=res, upload_name=file.filename if file else ""))
        except ApiError as exc:
            return HTMLResponse(render_page(error=exc.detail), status_code=exc.status)
        except SearchError as exc:
            return HTMLResponse(render_page(error=str(exc)), status_code=_status_for(exc))

    # -- collection browser (curators) ------------------------------------------------------------

    from fastapi.staticfiles import StaticFiles
    from starlette.templating import Jinja2Templates

    from vpr_assets.core.browse import (
        PAGE_MAX,
        CardFilter,
        card_record,
        facets,
        landmark_list,
        landmark_record,
        list_cards,
        map_points,
        scan_path,
    )
    from vpr_assets.core.curation.curator_files import DECISIONS_LOG, LABELS, LABELS_LOG, append_curator_action
    from vpr_assets.core.landmarks import CURATION_LOG, anchors, append_cluster_decision
    from vpr_assets.storage import Catalog

    here = Path(__file__).resolve().parent
    templates = Jinja2Templates(directory=str(here / "templates"))
    app.mount("/static", StaticFiles(directory=str(here / "static")), name="static")
    cat = Catalog(home)

    def card_filter(batch: str = Query("", description="batch (partition) name"),
                    label: str = Query("", description="quality label: good or bad"),
                    status: str = Query("", description="keep, duplicate or rejected"),
                    reason: str = Query("", description="a quality reason, e.g. blurry, no_landmark, curator_reject"),
                    group: str = Query("", description="duplicate group id"),
                    landmark: str = Query("", description="landmark name (substring) or cluster id"),
                    country: str = Query("", description="ISO-2 country of the card's resolved place"),
                    has_caption: str = Query("", description="yes / no: OCR read a caption"),
                    after: str = Query("", description="paging cursor from the previous page's `next`"),
                    limit: int = Query(48, ge=1, le=PAGE_MAX, description="cards per page")) -> CardFilter:
        """The grid's filters, one definition for the JSON route and the page (FastAPI dependency)."""
        caption = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}.get(has_caption.lower())
        return CardFilter(batch or None, label or None, status or None, reason or None, group or None,
                          landmark or None, country or None, caption, after or None, limit)

    @app.get("/api/cards", response_model=CardPage, tags=["collection"], responses=ERRORS,
             summary="Cards of the collection, filtered and paged")
    def api_cards(f: CardFilter = Depends(card_filter)):
        """Filtering and keyset paging run in DuckDB over the catalog's views: a page costs the same
        on a million cards. Pass the returned `next` as `after` for the next page."""
        return _add_urls(list_cards(cat, f))

    def full_record(scan_id: str) -> dict:
        card = card_record(cat, scan_id)
        if card is None:
            raise ApiError(404, "not_found", f"no card with scan_id {scan_id[:80]!r}")
        try:
            card["neighbours"] = engine.neighbours(scan_id, k=8)
        except SearchError:  # no index yet
            card["neighbours"] = []
        return _add_urls(card)

    @app.get("/api/cards/{scan_id}", response_model=CardRecord, tags=["collection"], responses=ERRORS,
             summary="One card's full record")
    def api_card(scan_id: str):
        """Scan, quality label and reasons, OCR text with boxes, geo-words and the resolved place,
        duplicates and crops, landmark cluster, the model that embedded it and its nearest cards."""
        return full_record(scan_id)

    def write_action(scan_id: str, action: str, who: str) -> dict:
        if scan_path(cat, scan_id) is None:
            raise ApiError(404, "not_found", f"no card with scan_id {scan_id[:80]!r}")
        log = LABELS_LOG if action in LABELS else DECISIONS_LOG
        try:
            row = append_curator_action(home, log, scan_id, action, who)
        except ValueError as exc:
            raise ApiError(422, "invalid_parameter", str(exc)) from None
        return {"log": log, "row": row}

    @app.post("/api/decisions", response_model=ActionWritten, tags=["collection"], responses=ERRORS,
              summary="Record a curator's decision or label")
    def api_decision(action: CuratorAction):
        """Appends one row (scan, action, who, when) to curation/decisions_log.csv or labels_log.csv;
        the next `scan_quality` run of the card's batch applies it (the latest row wins)."""
        return write_action(action.scan_id, action.action, action.who)

    def clustered(scan_id: str) -> bool:
        return bool(cat.has("landmark_clusters") and len(
            cat.query("SELECT 1 FROM landmark_clusters WHERE scan_id = ? LIMIT 1", [scan_id])))

    def write_landmark_action(a: LandmarkAction) -> dict:
        if a.action == "move" and scan_path(cat, a.scan_id) is None:  # a card outside every cluster may join one
            raise ApiError(404, "not_found", f"no card with scan_id {a.scan_id[:80]!r}")
        for named in filter(None, (a.other_scan_id,) if a.action == "move" else (a.scan_id, a.other_scan_id)):
            if not any(clustered(sid) for sid in anchors(named)):
                raise ApiError(404, "not_found", f"no landmark cluster holds scan_id {named[:80]!r}")
        try:
            row = append_cluster_decision(home, a.action, a.scan_id, a.who, a.other_scan_id, a.name, a.lat, a.lon)
        except ValueError as exc:
            raise ApiError(422, "invalid_parameter", str(exc)) from None
        return {"log": CURATION_LOG, "row": row}

    @app.post("/api/landmark-decisions", response_model=ActionWritten, tags=["collection"], responses=ERRORS,
              summary="Record a curator's decision on a landmark")
    def api_landmark_decision(action: LandmarkAction):
        """Appends one row (action, card, who, when) to curation/clusters_log.csv; `landmark_decisions_sensor`
        then re-materialises landmark_clusters, which applies every decision in order."""
        return write_landmark_action(action)

    @app.get("/api/landmarks/{cluster_id}", response_model=LandmarkRecord, tags=["collection"], responses=ERRORS,
             summary="One landmark cluster's record")
    def api_landmark_record(cluster_id: int):
        """Name, status, where it stands and who said so, medoid, places, member cards, the curators'
        decisions naming its cards, and the other clusters. Cluster ids change when clusters are rebuilt."""
        lm = landmark_record(cat, cluster_id)
        if lm is None:
            raise ApiError(404, "not_found", f"no landmark cluster {cluster_id}")
        return _add_urls(lm)

    @app.get("/scans/{scan_id}", tags=["files"], summary="A card's original scan file",
             responses={200: {"content": {"image/jpeg": {}}}, 404: {"model": ErrorBody}})
    def scan_file(scan_id: str):
        rel = scan_path(cat, scan_id) if len(scan_id) <= 128 else None
        if not rel:
            return _error_response(404, "not_found", "no such scan")
        target = (home / rel).resolve()
        if not target.is_relative_to(home) or not target.is_file():
            return _error_response(404, "not_found", "no such scan")
        return FileResponse(target, headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/browse", response_class=HTMLResponse, tags=["pages"], summary="Collection browser: filtered card grid")
    def browse_page(request: Request, f: CardFilter = Depends(card_filter)):
        page = _add_urls(list_cards(cat, f))
        params = {k: v for k, v in dict(batch=f.batch, label=f.label, status=f.status, reason=f.reason, group=f.group,
                                         landmark=f.landmark, country=f.country).items() if v}
        if f.has_caption is not None:
            params["has_caption"] = "yes" if f.has_caption else "no"
        next_url = "/browse?" + urllib.parse.urlencode({**params, "after": page["next"]}) if page["next"] else None
        return templates.TemplateResponse(request, "browse.html", {"page": page, "f": f, "facets": facets(cat),
                                                                    "next_url": next_url})

    @app.get("/cards/{scan_id}", response_class=HTMLResponse, tags=["pages"], summary="Collection browser: one card")
    def card_page(request: Request, scan_id: str, done: str = ""):
        try:
            card = full_record(scan_id)
        except ApiError as exc:
            return HTMLResponse(render_page(error=exc.detail), status_code=exc.status)
        notice = ""
        if done:
            notice = (f"Recorded: {done}. The next landmark_clusters run applies it." if done.endswith("(landmark)") else
                      f"Recorded: {done}. The next scan_quality run of batch {card['batch']} applies it.")
        return templates.TemplateResponse(request, "card.html", {"card": card, "neighbours": card["neighbours"],
                                                                  "notice": notice, "who": _curator(request),
                                                                  "landmarks": landmark_list(cat)})

    @app.post("/cards/{scan_id}/decision", tags=["pages"], summary="Collection browser: record a curator action")
    def card_decision(scan_id: str, action: str = Form(...), who: str = Form(...)):
        try:
            write_action(scan_id, action, who)
        except ApiError as exc:
            return HTMLResponse(render_page(error=exc.detail), status_code=exc.status)
        return _done(f"/cards/{urllib.parse.quote(scan_id)}", action, who)

    @app.post("/cards/{scan_id}/landmark", tags=["pages"], summary="Collection browser: move a card to a landmark, or split it off")
    def card_landmark(scan_id: str, action: str = Form(...), who: str = Form(...), target: str = Form(""),
                      name: str = Form("")):
        """The card page's landmark form: `move` (the card joins landmark `target`, anchored on its
        medoid) or `split` (the card leaves its landmark for a new one called `name`)."""
        other = landmark_record(cat, int(target)) if target.strip().lstrip("-").isdigit() else None
        try:
            if action not in ("move", "split"):
                raise ApiError(422, "invalid_parameter", f"a card's landmark action is move or split, not {action[:40]!r}")
            if action == "move" and other is None:
                raise ApiError(422, "invalid_parameter", "move: choose the landmark this card joins")
            write_landmark_action(LandmarkAction(scan_id=scan_id, action=action, who=who, name=name,
                                                 other_scan_id=_anchor_cards(other) if action == "move" else ""))
        except ApiError as exc:
            return HTMLResponse(render_page(error=exc.detail), status_code=exc.status)
        except ValueError as exc:
            return HTMLResponse(render_page(error=str(exc)), status_code=422)
        return _done(f"/cards/{urllib.parse.quote(scan_id)}", f"{action} (landmark)", who)

    @app.get("/landmarks/{cluster_id}", response_class=HTMLResponse, tags=["pages"],
             summary="Collection browser: one landmark (its cards, medoid, places, curator actions)")
    def landmark_page(request: Request, cluster_id: int, done: str = ""):
        lm = landmark_record(cat, cluster_id)
        if lm is None:
            return HTMLResponse(render_page(error=f"no landmark cluster {cluster_id}"), status_code=404)
        notice = f"Recorded: {done}. The next landmark_clusters run applies it." if done else ""
        return templates.TemplateResponse(request, "landmark.html", {"lm": _add_urls(lm), "notice": notice,
                                                                      "who": _curator(request)})

    @app.post("/landmarks/{cluster_id}/decision", tags=["pages"], summary="Collection browser: a decision on a landmark")
    def landmark_decision(cluster_id: int, action: str = Form(...), who: str = Form(...), name: str = Form(""),
                          target: str = Form(""), lat: str = Form(""), lon: str = Form("")):
        """The landmark page's forms: anchored on the medoid of this cluster (and of `target`, the
        cluster that joins it on merge), written as in POST /api/landmark-decisions."""
        lm = landmark_record(cat, cluster_id)
        other = landmark_record(cat, int(target)) if target.strip().lstrip("-").isdigit() else None
        try:
            if lm is None:
                raise ApiError(404, "not_found", f"no landmark cluster {cluster_id}")
            if action == "merge" and other is None:
                raise ApiError(422, "invalid_parameter", "merge: choose the landmark that joins this one")
            write_landmark_action(LandmarkAction(
                scan_id=_anchor_cards(lm), action=action, who=who, name=name,
                other_scan_id=_anchor_cards(other) if action == "merge" and other else "",
                lat=_float_or_none(lat), lon=_float_or_none(lon)))
        except ApiError as exc:
            return HTMLResponse(render_page(error=exc.detail), status_code=exc.status)
        except ValueError as exc:  # lat/lon not numbers or out of range (pydantic errors are ValueErrors)
            return HTMLResponse(render_page(error=f"invalid location: {exc}"), status_code=422)
        return _done(f"/landmarks/{cluster_id}", action, who)

    @app.get("/map", response_class=HTMLResponse, tags=["pages"], summary="Collection browser: offline map")
    def map_page(request: Request):
        return templates.TemplateResponse(request, "map.html", {"points": map_points(cat)})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)

    return app


CURATOR_COOKIE = "vpr_curator"


def _anchor_cards(lm: dict, n: int = 5) -> str:
    """The cards a page's decision on landmark `lm` names: its medoid and up to four others, so the
    decision still finds the landmark when one of them later leaves the clusters."""
    others = [c["scan_id"] for c in lm["cards"] if c["scan_id"] != lm["medoid"]]
    return " ".join([lm["medoid"], *others[: n - 1]])


def _done(page: str, action: str, who: str) -> Response:
    """After a curator action: back to the page with a notice; the browser remembers who acted
    (a cookie), so every form of every page is pre-filled with that name."""
    r = RedirectResponse(f"{page}?{urllib.parse.urlencode({'done': action})}", status_code=303)
    r.set_cookie(CURATOR_COOKIE, urllib.parse.quote(" ".join(who.split())[:80]), max_age=180 * 24 * 3600,
                 httponly=True, samesite="lax")
    return r


def _curator(request: Request) -> str:
    return urllib.parse.unquote(request.cookies.get(CURATOR_COOKIE, ""))[:80]


def _float_or_none(text: str) -> Optional[float]:
    """A number typed in a form field; empty is None, anything else not a number raises ValueError."""
    return float(text.replace(",", ".")) if text.strip() else None


# --- the search page (Jinja2, autoescaped; no external resources) --------------------------------

_PAGES = None


def render_page(image_result: Optional[dict] = None, landmark_result: Optional[dict] = None, name: str = "",
                error: str = "", upload_name: str = "") -> str:
    """The search page (templates/search.html): forms, an error, a picture's or a name's answer.
    Also the error page of the browser routes, so that every page has the same header."""
    global _PAGES
    if _PAGES is None:
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        _PAGES = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                             autoescape=select_autoescape(["html"]))
    return _PAGES.get_template("search.html").render(image_result=image_result, landmark_result=landmark_result,
                                                     name=name, error=error, upload_name=upload_name)


def serve(home: Path, host: str = "127.0.0.1", port: int = 8000, config: Optional[ApiConfig] = None,
          log_level: str = "info") -> None:
    import uvicorn

    app = create_app(home, config)
    uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1)


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2)
