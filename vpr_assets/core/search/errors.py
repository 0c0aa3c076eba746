"""Why a query cannot be answered: every bad input raises a `SearchError` (a ValueError) with a
short machine-readable `reason`, so the CLI and the HTTP API turn it into a clear message and
status code."""

from __future__ import annotations


class SearchError(ValueError):
    """A query that cannot be answered; `reason` is short and machine-readable."""

    reason = "bad_query"

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        if reason:
            self.reason = reason


class NoIndexError(SearchError):
    """No search index has been built yet (materialise `faiss_index`)."""

    reason = "no_index"


class BadImageError(SearchError):
    """The uploaded bytes are not a usable image (`reason` from the safe decoder)."""

    reason = "not_an_image"


class ImageTooLargeError(BadImageError):
    """Too many bytes or pixels."""

    reason = "too_large"


class BadQueryError(SearchError):
    """An empty or malformed text query, or a bad parameter."""

    reason = "bad_query"
