"""`vpr serve`: the HTTP search API and its upload page (FastAPI), over `vpr_assets.core.search`."""

__all__ = ["ApiConfig", "create_app"]


def __getattr__(name: str):  # FastAPI loads when the API is used, not when a submodule is imported
    if name in __all__:
        from vpr_assets.api import server

        return getattr(server, name)
    raise AttributeError(name)
