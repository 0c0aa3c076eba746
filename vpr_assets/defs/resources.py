"""Resources shared by every domain: the data root and its DuckDB catalog, the UI links, and the
models the assets run (the image model the registry makes active, caption OCR, text encoder). Tests and deployments swap them in
`Definitions` (e.g. a CPU-only OCR reader) instead of setting environment variables."""

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


class CaptionOcrResource(dg.ConfigurableResource):
    """The caption reader `ocr_text` runs: EasyOCR's networks through ONNX Runtime on a CPU, its torch
    path on CUDA (`use_gpu` and a visible GPU). The reader is cached per process and settings."""

    use_gpu: bool = True
    # unset: from the environment at run time (vpr_assets.paths: $VPR_TESSERACT, $VPR_OCR_CACHE)
    tesseract: Optional[str] = None  # the second engine's command: a name on PATH or a path
    export_cache: Optional[str] = None  # folder of the ONNX exports
    streams: int = 0  # cards read at once on a CPU; 0: one per core this process may use (same rows)
    tesseract_in_process: bool = True  # false: run the second engine as a command per card (same readings, slower)
    # re-read policy after an OCR change: keep cards read with other settings and read only new or failed
    # ones (unset: $VPR_OCR_KEEP_OLDER_READS, else false: every card of a re-run batch is read again)
    keep_older_reads: Optional[bool] = None

    @property
    def keeps_older_reads(self) -> bool:
        from vpr_assets.paths import ocr_keep_older_reads

        return ocr_keep_older_reads() if self.keep_older_reads is None else self.keep_older_reads

    @property
    def gpu(self) -> bool:
        import torch

        return bool(self.use_gpu and torch.cuda.is_available())

    @property
    def tools(self):
        from vpr_assets.core.text.ocr import OcrTools
        from vpr_assets.paths import ocr_export_cache, tesseract_command

        return OcrTools(self.tesseract or tesseract_command(),
                        Path(self.export_cache) if self.export_cache else ocr_export_cache(), self.tesseract_in_process)

    def open(self, settings):
        from vpr_assets.core.onnx_sessions import available_cpus
        from vpr_assets.core.text.ocr import CaptionOCR

        return CaptionOCR(settings, gpu=self.gpu, tools=self.tools, streams=self.streams or available_cpus())


class TextEncoderResource(dg.ConfigurableResource):
    """all-MiniLM-L6-v2 from its offline package, loaded once per process (CUDA when available,
    unless `device` says otherwise)."""

    device: Optional[str] = None
    batch_size: int = 64

    @property
    def model_name(self) -> str:
        from vpr_assets.core.text.text_embeddings import MODEL_NAME

        return MODEL_NAME

    @property
    def dim(self) -> int:
        from vpr_assets.core.text.text_embeddings import EMBED_DIM

        return EMBED_DIM

    def encode(self, texts: list[str]):
        """(vectors (n_nonempty, dim) float32 L2-normalised, indices of the texts that had text)."""
        from vpr_assets.core.text.text_embeddings import embed_texts

        return embed_texts(texts, batch_size=self.batch_size, device=self.device)


class ModelRegistryResource(dg.ConfigurableResource):
    """The MLflow registry of the data root and the image model it makes active: its `champion`
    version, else the pretrained embedder `pretrained`. Every asset and sensor that embeds or
    follows the champion asks here, so a deployment (or a test) sets the fallback model in one place."""

    catalog: CatalogResource
    pretrained: str = "lite0_gem512"

    def label(self) -> str:
        """The active model's label: "vpr_landmark_recognizer/N" or "pretrained:<name>"."""
        from vpr_assets.core.active_model import model_version_label

        return model_version_label(self.catalog.root, self.pretrained)

    def active(self, version: str | None = None):
        """The model to embed with (`core.active_model.ActiveModel`): `version` when given, else the
        champion, else pretrained; loaded once per process."""
        from vpr_assets.core.active_model import active_model

        return active_model(self.catalog.root, version, self.pretrained)
