"""Vision core: landmark embeddings (timm EfficientNet-Lite + GeM + neck), batched inference,
FAISS indexing and landmark clustering. Framework-free: no Dagster here.

    from vpr_assets.core.vision import build_embedder, embed_paths, VectorIndex, cluster_embeddings

The names below load on first use (PEP 562), so importing a light submodule such as `rerank`
does not pay for torch, timm and faiss (`vpr --help` builds its parser from `rerank`).
"""

from importlib import import_module

_EXPORTS = {
    "ClusteringResult": "clustering", "ClusterStats": "clustering", "cluster_embeddings": "clustering",
    "knn_graph": "clustering",
    "EmbeddingResult": "embedder", "embed_images": "embedder", "embed_paths": "embedder",
    "VectorIndex": "index", "choose_factory": "index",
    "MODEL_CONFIGS": "models", "ArcMarginProduct": "models", "GeM": "models", "LandmarkEmbedder": "models",
    "ModelConfig": "models", "arcface_loss": "models", "build_embedder": "models", "load_checkpoint": "models",
    "model_version": "models", "save_checkpoint": "models",
    "WeightMismatchError": "weights",
    "PCAWhitening": "whitening",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
