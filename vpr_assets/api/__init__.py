"""`vpr serve`: the HTTP search API and its upload page (FastAPI), over `vpr_assets.core.search`."""

from vpr_assets.api.server import ApiConfig, create_app

__all__ = ["ApiConfig", "create_app"]
