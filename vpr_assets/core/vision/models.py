"""Landmark embedding model: the Google Landmark Recognition 2020 winner's design, small.

backbone (timm EfficientNet-Lite, no head) -> GeM pooling (learnable p, init 3) -> neck
(Linear -> BatchNorm1d -> PReLU, 512-d) -> L2 normalisation; trained with an ArcFace head
(`ArcMarginProduct`). One registry (`MODEL_CONFIGS`) and one builder (`build_embedder`).

Before any training the neck is random, so `output="gem"` (the default of the registry entries)
makes the embedding the L2-normalised GeM-pooled backbone features (1280-d for lite0/lite2): that is
the "pretrained GeM" embedding, which retrieves landmarks usefully out of the box (see
tests/core/test_realsample_retrieval.py). A trained model is switched to `output="neck"` (512-d).

The neck reads the L2-normalised GeM vector (`neck_input="l2"`), i.e. exactly the pretrained
embedding, so training can start the neck *where the pretrained embedding already is*: a PCA
(-whitening) of it (`init_neck_from_pca`), not a random projection that training must first undo.
Checkpoints written before this option read the raw GeM vector (`neck_input="raw"`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

from vpr_assets.core.vision.whitening import pca_basis  # with scikit-learn, before any torch work
from vpr_assets.storage.atomic import atomic_path

from .weights import load_imagenet_weights

OUTPUTS = ("gem", "neck")
NECKS = ("linear_bn_prelu", "linear_bn")
NECK_INPUTS = ("l2", "raw")
CHECKPOINT_WEIGHTS = "weights.pt"
CHECKPOINT_CONFIG = "config.json"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored as JSON next to every checkpoint."""

    name: str
    backbone: str  # timm model name
    embedding_dim: int = 512  # neck output size
    neck: str = "linear_bn_prelu"
    gem_p: float = 3.0
    gem_trainable: bool = True
    image_size: int = 448  # default inference size (the winner trained at 448)
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # EfficientNet-Lite (TF) normalisation
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    output: str = "gem"  # "gem" until the neck is trained, then "neck"
    neck_input: str = "l2"  # "l2": the neck reads the normalised GeM vector; "raw": older checkpoints
    notes: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ModelConfig":
        data = dict(data)
        for key in ("mean", "std"):
            if key in data:
                data[key] = tuple(data[key])
        data.setdefault("neck_input", "raw")  # checkpoints from before the option existed
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


MODEL_CONFIGS: dict[str, ModelConfig] = {}


def register_model_config(config: ModelConfig) -> ModelConfig:
    if config.name in MODEL_CONFIGS:
        raise ValueError(f"model config {config.name!r} already registered")
    if config.neck not in NECKS or config.output not in OUTPUTS or config.neck_input not in NECK_INPUTS:
        raise ValueError(f"bad neck/output in {config}")
    MODEL_CONFIGS[config.name] = config
    return config


register_model_config(ModelConfig("lite0_gem512", "tf_efficientnet_lite0", notes="fast default"))
register_model_config(ModelConfig("lite1_gem512", "tf_efficientnet_lite1", notes="~1.6x the compute of lite0"))
register_model_config(ModelConfig("lite2_gem512", "tf_efficientnet_lite2", notes="~2.3x the compute of lite0"))


class GeM(nn.Module):
    """Generalised-mean pooling: p=1 is average pooling, p->inf is max pooling; p is learnt."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6, trainable: bool = True):
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p, requires_grad=trainable)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C)
        p = self.p.to(torch.float32)
        x = x.float().clamp(min=self.eps).pow(p)
        return x.mean(dim=(-2, -1)).pow(1.0 / p)

    def extra_repr(self) -> str:
        return f"p={self.p.item():.4f}, eps={self.eps}"


def _make_neck(kind: str, in_features: int, out_features: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(in_features, out_features, bias=True), nn.BatchNorm1d(out_features)]
    if kind == "linear_bn_prelu":
        layers.append(nn.PReLU())
    return nn.Sequential(*layers)


class LandmarkEmbedder(nn.Module):
    """Image batch (normalised float, B x 3 x H x W) -> L2-normalised embeddings (B x D)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.backbone = timm.create_model(config.backbone, pretrained=False, num_classes=0, global_pool="")
        self.num_features = int(self.backbone.num_features)
        self.pool = GeM(config.gem_p, trainable=config.gem_trainable)
        self.neck = _make_neck(config.neck, self.num_features, config.embedding_dim)
        self.output = config.output

    @property
    def embedding_dim(self) -> int:
        return self.num_features if self.output == "gem" else self.config.embedding_dim

    def preprocess(self, size: int | None = None, resize: str | None = None):
        """The pixels this model takes (`preprocess.Preprocess`): its normalisation at `size`
        (default: its inference size) and resize policy (default: centre crop)."""
        from .preprocess import DEFAULT_RESIZE, Preprocess

        return Preprocess(int(size or self.config.image_size), self.config.mean, self.config.std,
                          resize or DEFAULT_RESIZE)

    def set_output(self, output: str) -> "LandmarkEmbedder":
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.output = output
        self.config = replace(self.config, output=output)
        return self

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """GeM-pooled backbone features, not normalised (B x num_features)."""
        return self.pool(self.backbone(x))

    def neck_from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """Neck output (not normalised) from GeM-pooled features: lets training cache the frozen part."""
        if self.config.neck_input == "l2":
            pooled = F.normalize(pooled.float(), dim=-1)
        return self.neck(pooled)

    def neck_features(self, x: torch.Tensor) -> torch.Tensor:
        """Neck output before normalisation: what the ArcFace head trains on."""
        return self.neck_from_pooled(self.pooled(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.pooled(x)
        if self.output == "neck":
            feats = self.neck_from_pooled(feats)
        return F.normalize(feats.float(), dim=-1)


def build_embedder(name: str, pretrained: bool = True, **overrides) -> LandmarkEmbedder:
    """Build a registered model; `pretrained` loads the offline ImageNet backbone weights.

    `overrides` replace config fields, e.g. `build_embedder("lite0_gem512", image_size=320)`.
    """
    if name not in MODEL_CONFIGS:
        raise KeyError(f"unknown model {name!r}; registered: {sorted(MODEL_CONFIGS)}")
    config = replace(MODEL_CONFIGS[name], **overrides) if overrides else MODEL_CONFIGS[name]
    model = LandmarkEmbedder(config)
    if pretrained:
        load_imagenet_weights(model.backbone, config.backbone)
    return model.eval()


@torch.no_grad()
def init_neck_from_pca(model: LandmarkEmbedder, pooled: torch.Tensor, whiten: float = 0.5,
                       shrinkage: float = 0.1) -> None:
    """Start the neck at the PCA(-whitening) of the pretrained embedding, fitted on `pooled`
    (GeM features of training images, several augmented views each).

    Linear = projection on the top principal components (centred); BatchNorm carries the
    eigenvalues so that its running statistics match the data and `whiten` sets how far each
    direction is rescaled (0 = a plain rotation, cosines as pretrained; 1 = full whitening, each
    direction to unit variance; eigenvalues floored at `shrinkage` x the largest); PReLU starts
    as the identity. Fewer samples than dimensions: the basis is completed with orthonormal
    directions of the floor variance, so every output is defined and nothing is random noise-scaled.
    """

    x = pooled.float()
    if model.config.neck_input == "l2":
        x = F.normalize(x, dim=-1)
    linear, bn = model.neck[0], model.neck[1]
    mean, comps, eig = pca_basis(x.cpu().numpy(), linear.out_features, shrinkage=shrinkage)
    comps_t = torch.from_numpy(comps).to(linear.weight)
    linear.weight.copy_(comps_t)
    linear.bias.copy_(-(comps_t @ torch.from_numpy(mean).to(linear.weight)))
    var = torch.from_numpy(eig).to(bn.running_var)
    bn.running_mean.zero_()
    bn.running_var.copy_(var)
    # BN divides by sqrt(var); gamma = var^((1 - whiten)/2) leaves var^(-whiten/2) of it
    bn.weight.copy_((var + bn.eps).pow((1.0 - whiten) / 2.0))
    bn.bias.zero_()
    if len(model.neck) > 2:
        model.neck[2].weight.fill_(1.0)  # PReLU as identity


class ArcMarginProduct(nn.Module):
    """ArcFace head: logits = s * cos(theta + m) for the true class, s * cos(theta) otherwise.

    `easy_margin` only applies the margin where cos(theta) > 0; otherwise the usual fallback
    cos(theta) - m*sin(m) keeps the logit monotonic once theta + m > pi. `ls_eps` smooths labels.
    Without labels it returns the plain scaled cosines (for prediction).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        s: float = 30.0,
        m: float = 0.5,
        easy_margin: bool = False,
        ls_eps: float = 0.0,
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.s, self.m, self.easy_margin, self.ls_eps = s, m, easy_margin, ls_eps
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.xavier_uniform_(self.weight)
        self.cos_m, self.sin_m = math.cos(m), math.sin(m)
        self.th = math.cos(math.pi - m)
        self.mm = math.sin(math.pi - m) * m

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(embeddings.float()), F.normalize(self.weight.float()))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cosine = self.cosine(embeddings)
        if labels is None:
            return cosine * self.s
        sine = torch.sqrt((1.0 - cosine.pow(2)).clamp(0.0, 1.0))
        phi = cosine * self.cos_m - sine * self.sin_m
        if self.easy_margin:
            phi = torch.where(cosine > 0, phi, cosine)
        else:
            phi = torch.where(cosine > self.th, phi, cosine - self.mm)
        one_hot = F.one_hot(labels.long(), self.out_features).to(cosine.dtype)
        if self.ls_eps > 0:
            one_hot = (1 - self.ls_eps) * one_hot + self.ls_eps / self.out_features
        return (one_hot * phi + (1.0 - one_hot) * cosine) * self.s


def arcface_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over ArcMarginProduct logits (already margin-adjusted and scaled)."""
    return F.cross_entropy(logits, labels.long())


# --- checkpoints -------------------------------------------------------------------------------


def state_fingerprint(model: nn.Module) -> str:
    """Short content hash of the weights: changes whenever any weight changes."""
    h = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def model_version(model: LandmarkEmbedder) -> str:
    """Version string for lineage (index sidecars, tables): config name, output mode, weights hash."""
    return f"{model.config.name}:{model.output}:{state_fingerprint(model)}"


def save_checkpoint(model: LandmarkEmbedder, directory: str | Path, extra: dict | None = None) -> Path:
    """Write `weights.pt` then `config.json` atomically; a folder with config.json is complete."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / CHECKPOINT_WEIGHTS) as tmp:
        torch.save(model.state_dict(), tmp)
    meta = {
        "config": model.config.to_json(),
        "model_version": model_version(model),
        "timm_version": timm.__version__,
        "torch_version": torch.__version__,
        "extra": extra or {},
    }
    with atomic_path(directory / CHECKPOINT_CONFIG) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    return directory


def load_checkpoint(directory: str | Path, map_location: str | torch.device = "cpu") -> LandmarkEmbedder:
    """Rebuild a model from `save_checkpoint` output (no ImageNet weights needed)."""
    directory = Path(directory)
    meta = json.loads((directory / CHECKPOINT_CONFIG).read_text())
    config = ModelConfig.from_json(meta["config"])
    model = LandmarkEmbedder(config)
    state = torch.load(directory / CHECKPOINT_WEIGHTS, map_location=map_location, weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()
