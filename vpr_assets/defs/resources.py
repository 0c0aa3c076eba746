"""Resources shared by every domain: the data root and its DuckDB catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import dagster as dg

from vpr_assets.paths import inbox_dir, vpr_home
from vpr_assets.storage import Catalog


class CatalogResource(dg.ConfigurableResource):
    """The data root (VPR_HOME, else the project's vpr_data/) and its DuckDB catalog of assets."""

    home: Optional[str] = None

    @property
    def root(self) -> Path:
        if self.home:
            p = Path(self.home).expanduser().resolve()
            p.mkdir(parents=True, exist_ok=True)
            return p
        return vpr_home()

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.root)

    @property
    def inbox(self) -> Path:
        return inbox_dir(self.root)


class UiLinksResource(dg.ConfigurableResource):
    """Base URLs of the MLflow and Dagster UIs: Dagster metadata links to MLflow runs and versions,
    MLflow tags link back to Dagster runs (set from VPR_MLFLOW_UI_URL / VPR_DAGSTER_UI_URL in
    `definitions.py`)."""

    mlflow_ui_url: str = "http://127.0.0.1:5000"
    dagster_ui_url: str = "http://127.0.0.1:3000"

    @property
    def links(self):
        from vpr_assets.core.tracking import UiLinks

        return UiLinks(self.mlflow_ui_url, self.dagster_ui_url)
