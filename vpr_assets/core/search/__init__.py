"""Search by picture or by place name (`SearchEngine`), for the CLI and the HTTP API."""

from vpr_assets.core.search.config import FALLBACK_THRESHOLD, NON_LANDMARK, SearchConfig
from vpr_assets.core.search.engine import SearchEngine
from vpr_assets.core.search.errors import BadImageError, BadQueryError, ImageTooLargeError, NoIndexError, SearchError
from vpr_assets.core.search.landmark_vote import query_landmark_score
from vpr_assets.core.search.names import name_score, normalise_name
from vpr_assets.core.search.query_image import image_bytes_of
from vpr_assets.core.search.state import evaluation_rule, evaluation_threshold

__all__ = [
    "FALLBACK_THRESHOLD", "NON_LANDMARK", "BadImageError", "BadQueryError", "ImageTooLargeError", "NoIndexError",
    "SearchConfig", "SearchEngine", "SearchError", "evaluation_rule", "evaluation_threshold", "image_bytes_of",
    "name_score", "normalise_name", "query_landmark_score",
]
