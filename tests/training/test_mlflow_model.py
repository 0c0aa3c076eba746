"""A registered version is a loadable MLflow model: `mlflow.pyfunc.load_model("models:/<name>/<v>")`
embeds a real picture exactly as the project's own loader does, and the version records a
signature and an input example."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from vpr_assets.core import tracking
from vpr_assets.core.active_model import REGISTERED_MODEL, active_model
from vpr_assets.core.training.mlflow_model import embed_frame, log_recognizer_model
from vpr_assets.core.training.recognizer import Recognizer, RecognizerConfig, save_recognizer
from vpr_assets.core.vision.models import build_embedder


@pytest.mark.parametrize("variant", ["image", "image_ocr"])
def test_a_registered_version_loads_as_pyfunc_and_embeds_a_picture(tmp_path, realsample_dir, realsample_manifest,
                                                                    variant):
    home = tmp_path / "home"
    rec = Recognizer(build_embedder("lite0_gem512", image_size=224), RecognizerConfig(variant)).eval()
    ckpt = save_recognizer(rec, tmp_path / "ckpt")
    files = [realsample_dir / f for f in realsample_manifest.file[:2]]
    pictures = [f.read_bytes() for f in files]
    with tracking.active_store(home), mlflow.start_run(experiment_id=tracking.experiment_id(home)) as run:
        info = log_recognizer_model(rec, ckpt, pictures[0])
    version = tracking.ModelRegistry(home).register(REGISTERED_MODEL, run.info.run_id, "model", {},
                                                   source=info.model_uri)

    with tracking.active_store(home):
        loaded = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{version}")
    inputs = loaded.metadata.get_input_schema().input_names()
    assert inputs[0] == "image" and ("text" in inputs) == (variant == "image_ocr")
    frame = pd.DataFrame({"image": pictures})
    if variant == "image_ocr":
        frame["text"] = ["Tower Bridge, London", None]
    got = np.asarray(loaded.predict(frame))
    assert got.shape == (2, rec.embedding_dim)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(got, embed_frame(rec, frame), atol=1e-5)
    assert not np.allclose(got[0], got[1])  # two different pictures

    # the project's own loader reads the same version (checkpoint inside the pyfunc folder)
    am = active_model(home, version)
    assert am.version == f"{REGISTERED_MODEL}/{version}" and am.recognizer is not None
    assert am.recognizer.config.variant == variant
