"""Vision domain: image embeddings, landmark clusters, the FAISS index and evaluations."""

from vpr_assets.defs.history import faiss_indexes_history
from vpr_assets.defs.vision.embeddings import image_embeddings
from vpr_assets.defs.vision.evaluation import evaluations
from vpr_assets.defs.vision.index import faiss_index
from vpr_assets.defs.vision.landmarks import landmark_clusters

assets = [image_embeddings, landmark_clusters, faiss_index, faiss_indexes_history, evaluations]
asset_checks: list = []
sensors: list = []
