"""Response bodies of the JSON API, as pydantic models: the OpenAPI schema (/docs, /redoc) shows
them, and FastAPI checks every answer against them. Extra keys are kept (`extra="allow"`), so a
field added by the engine reaches clients before it is documented here."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    """Every error: a machine-readable reason and a sentence for people."""

    error: str = Field(description="reason code, e.g. not_found, too_large, unsupported_media_type, no_index")
    detail: str = Field(description="what went wrong, in words")


class Health(_Open):
    status: str = Field(description="ok")
    home: str = Field(description="the data root (VPR_HOME) served")
    index: Optional[str] = Field(None, description="build id of the FAISS index in use")
    index_size: int = Field(description="cards in the index")
    model_version: str = Field(description="model that embedded the index and embeds queries")
    landmarks: int = Field(description="landmark clusters")
    scans: int
    threshold: Optional[float] = Field(None, description="non-landmark similarity threshold in use")
    threshold_source: Optional[str] = None


class Card(_Open):
    scan_id: str = Field(description="sha256 of the original scan")
    file_name: Optional[str] = None
    batch: Optional[str] = None
    thumbnail: Optional[str] = Field(None, description="thumbnail path under the data root")
    thumbnail_url: Optional[str] = Field(None, description="the thumbnail served by this API")
    description: Optional[str] = Field(None, description="the collector's description of the card")
    cluster_id: Optional[int] = None
    cluster_name: Optional[str] = None
    landmark: Optional[str] = Field(None, description="landmark of the card's cluster, if it is one")


class RankedCard(Card):
    rank: int
    score: float = Field(description="cosine similarity to the query")


class LandmarkAnswer(_Open):
    cluster_id: int
    name: str
    size: int
    places: list[dict[str, Any]] = Field(default_factory=list, description="places named on the cluster's cards")
    votes: int = Field(description="top neighbours that voted for it")
    confidence: float = Field(description="its share of the similarity-weighted votes")
    representative_scan_id: Optional[str] = None


class SearchResult(_Open):
    model_version: str
    index: Optional[str] = None
    index_size: int
    k: int
    threshold: Optional[float] = None
    threshold_source: Optional[str] = None
    rejection: str = Field(description="how landmark-or-not was decided: rule or threshold")
    landmark_score: Optional[float] = Field(None, description="the query's landmark score, when the rule uses it")
    top_score: Optional[float] = None
    prediction: str = Field(description="the landmark's name, or 'non-landmark'")
    landmark: Optional[LandmarkAnswer] = None
    reason: str = Field(description="why this prediction")
    results: list[RankedCard]


class MemberCard(Card):
    similarity: Optional[float] = Field(None, description="cosine similarity to the landmark's medoid card")
    is_representative: bool


class LandmarkMatch(_Open):
    cluster_id: int
    name: str
    match_score: float = Field(description="rapidfuzz score 0-100 of the best matching name")
    matched_on: str = Field(description="cluster_name, place or geo_words")
    matched_text: str
    size: int
    places: list[dict[str, Any]] = Field(default_factory=list)
    representative_scan_id: Optional[str] = None
    cards: list[MemberCard]


class LandmarkSearchResult(_Open):
    query: str
    normalised: str
    model_version: str
    n_matches: int
    matches: list[LandmarkMatch]


class CardPage(_Open):
    cards: list[dict[str, Any]] = Field(description="cards of this page, ordered by scan_id, with thumbnail_url")
    next: Optional[str] = Field(None, description="cursor of the next page (pass as `after`), null on the last")


class CardRecord(_Open):
    scan_id: str
    batch: str
    file_name: Optional[str] = None
    label: Optional[str] = Field(None, description="quality label good/bad")
    status: Optional[str] = Field(None, description="keep / duplicate / rejected")
    reasons: Optional[list[str]] = None
    ocr: Optional[dict[str, Any]] = Field(None, description="caption text and boxes (pixels of the upright scan)")
    geo: Optional[dict[str, Any]] = Field(None, description="geo-words, places and the resolved place")
    duplicates: list[dict[str, Any]] = Field(default_factory=list)
    crops: list[dict[str, Any]] = Field(default_factory=list)
    model_version: Optional[str] = Field(None, description="model that embedded the card")
    neighbours: list[dict[str, Any]] = Field(default_factory=list, description="nearest cards in the index")


class CuratorAction(BaseModel):
    scan_id: str = Field(description="the card")
    action: str = Field(description="keep, reject, not_duplicate:<scan_id>, landmark, non_landmark or low_interest")
    who: str = Field(description="the curator's name or initials, recorded with the time")


class ActionWritten(_Open):
    log: str = Field(description="the append-only file the action was written to (read by scan_quality, "
                     "or by landmark_clusters for a landmark action)")
    row: dict[str, str]


class LandmarkAction(BaseModel):
    """A curator's decision on a landmark, anchored on one of its cards (cluster ids change between
    runs, scan ids do not)."""

    scan_id: str = Field(description="a card of the landmark, or up to 8 separated by spaces (the decision applies to "
                         "the cluster most of them are in; the page names the medoid and four others)")
    action: str = Field(description="rename (name), merge (other_scan_id: a card of the landmark that joins this one), "
                        "reject, restore, split (this card leaves for a new landmark, name), "
                        "move (this card joins the landmark of other_scan_id), locate (lat, lon)")
    who: str = Field(description="the curator's name or initials, recorded with the time")
    other_scan_id: str = Field("", description="merge / move: a card (or several) of the other landmark")
    name: str = Field("", description="rename / split: the landmark's name")
    lat: Optional[float] = Field(None, ge=-90, le=90, description="locate: latitude (WGS84)")
    lon: Optional[float] = Field(None, ge=-180, le=180, description="locate: longitude (WGS84)")


class LandmarkRecord(_Open):
    cluster_id: int
    name: str
    status: str = Field(description="landmark, or rejected by a curator")
    size: int
    medoid: str = Field(description="scan_id of the card nearest the cluster's centre")
    lat: Optional[float] = None
    lon: Optional[float] = None
    location_source: Optional[str] = Field(None, description="curator (a locate decision), city or country (the "
                                           "top place's point, not the building's), null when unknown")
    places: list[dict[str, Any]] = Field(default_factory=list)
    cards: list[dict[str, Any]] = Field(default_factory=list)
    decisions: list[dict[str, Any]] = Field(default_factory=list, description="curators' decisions naming its cards")
    others: list[dict[str, Any]] = Field(default_factory=list, description="the other clusters (merge targets)")


ERRORS = {code: {"model": ErrorBody, "description": text} for code, text in {
    400: "bad request (missing or empty file, unreadable image, name too short)",
    413: "upload or image too large",
    415: "not an image format the API reads",
    422: "invalid parameter",
    503: "no index yet (materialise faiss_index)",
}.items()}
