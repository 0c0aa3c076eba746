"""Vision core: landmark embeddings (timm EfficientNet-Lite + GeM + neck), batched inference,
FAISS indexing and landmark clustering. Framework-free: no Dagster here.

    from vpr_assets.core.vision import build_embedder, embed_paths, VectorIndex, cluster_embeddings
"""

from .clustering import ClusteringResult, ClusterStats, cluster_embeddings, knn_graph
from .embedder import EmbeddingResult, embed_images, embed_paths
from .index import VectorIndex, choose_factory
from .models import (
    MODEL_CONFIGS,
    ArcMarginProduct,
    GeM,
    LandmarkEmbedder,
    ModelConfig,
    arcface_loss,
    build_embedder,
    load_checkpoint,
    model_version,
    save_checkpoint,
)
from .weights import WeightMismatchError
from .whitening import PCAWhitening

__all__ = [
    "MODEL_CONFIGS", "ArcMarginProduct", "ClusterStats", "ClusteringResult", "EmbeddingResult", "GeM",
    "LandmarkEmbedder", "ModelConfig", "PCAWhitening", "VectorIndex", "WeightMismatchError", "arcface_loss", "build_embedder",
    "choose_factory", "cluster_embeddings", "embed_images", "embed_paths", "knn_graph", "load_checkpoint",
    "model_version", "save_checkpoint",
]
