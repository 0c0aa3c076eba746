"""ArcFace training in two phases, so that a trained model starts where the pretrained one is.

Phase 1 (`neck_epochs`, "linear probing then fine-tuning", Kumar et al. 2022): the backbone is
frozen, its GeM features of every image (a clean view and `views` augmented ones) are computed once,
the neck starts as the PCA(-whitening) of the pretrained embedding and the ArcFace head as the
class means (weight imprinting), then neck, fusion and head train on the cached features: epoch 0
is the pretrained embedding, and many epochs cost seconds on a CPU.
Phase 2 (`epochs`): the backbone stages after `freeze_stages` are unfrozen and everything trains
end to end on augmented images (GPU-sized work; the CPU default skips it, see docs/benchmarks.md).

Images are trained at the size they are judged at (`image_size=None`: the embedder's inference
size, 320 px on CPU, 448 on CUDA). Deterministic given a seed (single-process loading, seeded
sampler and augmentations). `evaluate`, when given, is called on the model after each phase (and
at epoch 0), so every figure can be logged.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from timm.utils.model import freeze, unfreeze
from torch.utils.data import DataLoader

from vpr_assets.core.training.augment import eval_transform, seed_everything, train_transform
from vpr_assets.core.training.data import CardDataset, ClassBalancedSampler, TrainItem, class_map_of
from vpr_assets.core.training.recognizer import Recognizer, RecognizerConfig, save_recognizer
from vpr_assets.core.vision.embedder import default_num_workers
from vpr_assets.core.vision.models import ArcMarginProduct, arcface_loss, build_embedder, init_neck_from_pca

NECK_INITS = ("pca", "random")
HEAD_INITS = ("imprint", "random")


@dataclass
class TrainConfig:
    variant: str = "image_clusters"
    model_name: str = "lite0_gem512"
    image_size: int | None = None  # None = the size the embedder judges at (320 CPU, 448 CUDA)
    # phase 1: neck (+ fusion) + head on cached features of the frozen backbone
    neck_init: str = "pca"
    whiten: float = 0.0  # 0 = PCA rotation only (measured best), 1 = full whitening (see init_neck_from_pca)
    pca_shrinkage: float = 0.1
    head_init: str = "imprint"
    views: int = 8  # augmented views per image cached for phase 1 (plus one clean view)
    neck_epochs: int = 20
    neck_lr: float = 1e-3
    neck_batch_size: int = 64
    # phase 2: end-to-end fine-tuning of the unfrozen stages
    epochs: int = 0
    batch_size: int = 16
    lr: float = 1e-4
    backbone_lr_mult: float = 0.1
    freeze_stages: int = 5  # EfficientNet block stages kept frozen in phase 2 (0 = train everything)
    warmup_epochs: float = 0.5
    # both phases
    per_class: int | None = None  # items drawn per class per epoch (default: median class size)
    min_class_size: int = 3
    optimizer: str = "adamw"  # or "sgd"
    weight_decay: float = 1e-4
    arc_s: float = 30.0
    arc_m: float = 0.2
    allow_flip: bool = False
    seed: int = 0
    amp: bool = True  # used only on CUDA
    device: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        if self.neck_init not in NECK_INITS or self.head_init not in HEAD_INITS:
            raise ValueError(f"neck_init must be one of {NECK_INITS} and head_init one of {HEAD_INITS}")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"optimizer must be adamw or sgd, got {self.optimizer!r}")
        if not 0.0 <= self.whiten <= 1.0:
            raise ValueError(f"whiten must be in [0, 1], got {self.whiten}")
        if self.epochs < 0 or self.neck_epochs < 0 or self.views < 0:
            raise ValueError("epochs, neck_epochs and views must be >= 0")


@dataclass
class TrainResult:
    model: Recognizer
    class_map: dict[str, int]
    history: list[dict] = field(default_factory=list)
    checkpoint: Path | None = None
    seconds: float = 0.0

    @property
    def epochs(self) -> list[dict]:
        """The training epochs of both phases (the history less its evaluation records)."""
        return [h for h in self.history if h["phase"] != "eval"]


def _frozen_names(model: Recognizer, stages: int) -> list[str]:
    """The backbone's stem and its first `stages` block stages, as timm submodule names."""
    bb = model.embedder.backbone
    stem = [name for name in ("conv_stem", "bn1") if hasattr(bb, name)]
    return stem + [f"blocks.{i}" for i in range(min(stages, len(bb.blocks)))]


def _freeze(model: Recognizer, stages: int) -> list[str]:
    """timm's `freeze`: no gradients, and BatchNorm turned into FrozenBatchNorm (ImageNet statistics
    kept whatever the train/eval mode). Returns the names, for `_unfreeze`."""
    names = _frozen_names(model, stages)
    if names:
        freeze(model.embedder.backbone, names)
    return names


def _unfreeze(model: Recognizer, names: list[str]) -> None:
    """Back to plain BatchNorm, so the saved model has the architecture `build_embedder` builds."""
    if names:
        unfreeze(model.embedder.backbone, names)


def _loader_workers(device: torch.device) -> int:
    """Decode/augment in worker processes on CUDA only: on a CPU they would take the cores the model
    trains on (bench_gpu on an H200: phase 2 ran at 10 img/s with decoding on the main thread
    against a 1,600 img/s step ceiling)."""
    return default_num_workers(device) if device.type == "cuda" else 0


def lr_schedule(opt: torch.optim.Optimizer, total: int, warmup: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step schedule: linear warm-up from lr/warmup to lr over `warmup` steps, then cosine to 0 at
    `total` (torch's LinearLR + CosineAnnealingLR). Every group keeps its own base lr (lr x lr_mult)."""
    from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

    cosine = CosineAnnealingLR(opt, T_max=max(1, total - warmup))
    if warmup <= 0:
        return cosine
    linear = LinearLR(opt, start_factor=1 / warmup, end_factor=1.0, total_iters=max(1, warmup - 1))
    return SequentialLR(opt, [linear, cosine], milestones=[warmup])


def _optimizer(config: TrainConfig, groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """Each group's lr is `lr` x its `lr_mult`."""
    groups = [{**g, "lr": lr * g.get("lr_mult", 1.0)} for g in groups]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=config.weight_decay, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr, weight_decay=config.weight_decay)


def train_image_size(config: TrainConfig, model: Recognizer, device: torch.device) -> int:
    """The size images are trained at: the configured one, else the size the embedder judges at."""
    from vpr_assets.core.vision.embedder import default_image_size

    return int(config.image_size or default_image_size(model.embedder, device))


@torch.no_grad()
def cache_pooled_views(model: Recognizer, items: Sequence[TrainItem], class_map: dict[str, int], size: int,
                       views: int, device: torch.device, batch_size: int = 32, allow_flip: bool = False):
    """GeM features of a clean view and `views` augmented views of every item, the backbone frozen.

    Returns (pooled (n_views*n, d), labels, text (.., text_dim), has_text)."""
    model.eval()
    spec = model.embedder.preprocess(size)
    out = {"pooled": [], "y": [], "text": [], "has": []}
    for v in range(views + 1):
        tf = eval_transform(size) if v == 0 else train_transform(size, allow_flip)
        loader = DataLoader(CardDataset(items, class_map, tf), batch_size=batch_size, shuffle=False,
                            num_workers=_loader_workers(device), pin_memory=device.type == "cuda")
        for x, y, text, has_text in loader:
            out["pooled"].append(model.embedder.pooled(spec.normalise(x.to(device))).float().cpu())
            out["y"].append(y)
            out["text"].append(text)
            out["has"].append(has_text)
    return tuple(torch.cat(out[k]) for k in ("pooled", "y", "text", "has"))


@torch.no_grad()
def imprint_head(head: ArcMarginProduct, feats: torch.Tensor, labels: torch.Tensor) -> None:
    """Class weights = normalised mean feature of the class (Qi et al. 2018): logits start meaningful."""
    for c in range(head.out_features):
        sel = feats[labels == c]
        if len(sel):
            head.weight[c] = torch.nn.functional.normalize(sel.mean(0), dim=0)


def _train_neck(config: TrainConfig, model: Recognizer, head: ArcMarginProduct, cache, device: torch.device,
                log: Callable[[dict], None] | None, t0: float) -> list[dict]:
    """Phase 1: neck, fusion and head on the cached features (backbone and GeM frozen)."""
    pooled, y, text, has = cache
    params = list(model.embedder.neck.parameters()) + (list(model.fusion.parameters()) if model.fusion else [])
    opt = _optimizer(config, [{"params": params + list(head.parameters()), "lr_mult": 1.0}], config.neck_lr)
    sampler = ClassBalancedSampler(y.tolist(), config.per_class and config.per_class * (config.views + 1), seed=config.seed)
    steps_per_epoch = max(1, math.ceil(len(sampler) / config.neck_batch_size))
    history: list[dict] = []
    schedule = lr_schedule(opt, steps_per_epoch * config.neck_epochs, 0)
    model.embedder.neck.to(device)
    for epoch in range(config.neck_epochs):
        sampler.set_epoch(epoch)
        model.embedder.neck.train()
        if model.fusion is not None:
            model.fusion.train()
        order = torch.tensor(list(sampler), dtype=torch.long)
        loss_sum, correct, seen, lr = 0.0, 0, 0, opt.param_groups[-1]["lr"]
        for start in range(0, len(order), config.neck_batch_size):
            idx = order[start:start + config.neck_batch_size]
            if len(idx) < 2:
                continue  # BatchNorm needs two samples
            lr = opt.param_groups[-1]["lr"]
            yb = y[idx].to(device)
            feats = model.features_from_pooled(pooled[idx].to(device), text[idx].to(device), has[idx].to(device))
            loss = arcface_loss(head(feats, yb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            with torch.no_grad():
                correct += int((head(feats).argmax(1) == yb).sum())
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
        rec = {"phase": "neck", "epoch": epoch + 1, "loss": loss_sum / max(1, seen),
               "train_accuracy": correct / max(1, seen), "lr": lr, "seconds": time.time() - t0}
        history.append(rec)
        if log:
            log(rec)
    return history


def _train_end_to_end(config: TrainConfig, model: Recognizer, head: ArcMarginProduct, items, class_map, size: int,
                      device: torch.device, log, t0: float, epoch_offset: int) -> list[dict]:
    """Phase 2: the unfrozen backbone stages, GeM, neck, fusion and head on augmented images."""
    frozen = _freeze(model, config.freeze_stages)
    dataset = CardDataset(items, class_map, train_transform(size, config.allow_flip))
    sampler = ClassBalancedSampler(dataset.labels(), config.per_class, seed=config.seed + 1)
    workers = _loader_workers(device)
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=workers, drop_last=False,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)  # no restart per epoch
    backbone_params = [p for p in model.embedder.backbone.parameters() if p.requires_grad]
    other = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("embedder.backbone.")]
    groups = [{"params": backbone_params, "lr_mult": config.backbone_lr_mult},
              {"params": other + list(head.parameters()), "lr_mult": 1.0}]
    opt = _optimizer(config, groups, config.lr)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    steps_per_epoch = max(1, len(loader))
    schedule = lr_schedule(opt, steps_per_epoch * config.epochs, int(config.warmup_epochs * steps_per_epoch))
    history: list[dict] = []
    spec = model.embedder.preprocess(size)
    for epoch in range(config.epochs):
        sampler.set_epoch(epoch)
        model.train()  # the frozen stages' FrozenBatchNorm keeps its ImageNet statistics
        head.train()
        loss_sum, correct, seen, lr = 0.0, 0, 0, opt.param_groups[-1]["lr"]
        for x, y, text, has_text in loader:
            if len(y) < 2:
                continue  # BatchNorm needs two samples
            lr = opt.param_groups[-1]["lr"]
            x = spec.normalise(x.to(device))
            y, text, has_text = y.to(device), text.to(device), has_text.to(device)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                feats = model.features(x, text, has_text)
                logits = head(feats.float(), y)
                loss = arcface_loss(logits, y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            schedule.step()
            with torch.no_grad():
                correct += int((head(feats.float()).argmax(1) == y).sum())
            loss_sum += loss.item() * len(y)
            seen += len(y)
        rec = {"phase": "finetune", "epoch": epoch_offset + epoch + 1, "loss": loss_sum / max(1, seen),
               "train_accuracy": correct / max(1, seen), "lr": lr, "seconds": time.time() - t0}
        history.append(rec)
        if log:
            log(rec)
    _unfreeze(model, frozen)
    return history


def train(
    config: TrainConfig,
    items: Sequence[TrainItem],
    out_dir: Path | None = None,
    log: Callable[[dict], None] | None = None,
    init_from: Recognizer | None = None,
    evaluate: Callable[[Recognizer], dict] | None = None,
) -> TrainResult:
    """Train a recognizer; writes the checkpoint atomically (staging folder, then rename).

    `evaluate(model) -> figures` is called at epoch 0 and after each phase that ran; its figures
    go into the history (`{"phase": "eval", "after": ..., **figures}`) and to `log`."""
    t0 = time.time()
    config.validate()
    seed_everything(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    class_map = class_map_of(items, config.min_class_size)
    if len(class_map) < 2:
        raise ValueError(f"need at least 2 classes with >= {config.min_class_size} items, got {len(class_map)}")
    model = init_from or Recognizer(build_embedder(config.model_name, pretrained=True), RecognizerConfig(config.variant))
    model.to(device)
    head = ArcMarginProduct(model.embedding_dim, len(class_map), s=config.arc_s, m=config.arc_m).to(device)
    size = train_image_size(config, model, device)
    history: list[dict] = []

    def evaluated(after: str) -> None:
        if evaluate is None:
            return
        model.eval()
        rec = {"phase": "eval", "after": after, **evaluate(model), "seconds": time.time() - t0}
        history.append(rec)
        if log:
            log(rec)

    trainable = [i for i in items if i.label in class_map]
    if (init_from is None and config.neck_init == "pca") or config.head_init == "imprint" or config.neck_epochs:
        cache = cache_pooled_views(model, trainable, class_map, size, config.views, device, allow_flip=config.allow_flip)
        if init_from is None and config.neck_init == "pca":
            init_neck_from_pca(model.embedder, cache[0], config.whiten, config.pca_shrinkage)
        if config.head_init == "imprint":
            model.eval()
            with torch.no_grad():
                feats = model.features_from_pooled(cache[0].to(device), cache[2].to(device), cache[3].to(device))
            imprint_head(head, feats, cache[1].to(device))
        evaluated("init")
        history += _train_neck(config, model, head, cache, device, log, t0)
        if config.neck_epochs:
            evaluated("neck")
    if config.epochs:
        history += _train_end_to_end(config, model, head, trainable, class_map, size, device, log, t0, config.neck_epochs)
        evaluated("finetune")
    model.eval().cpu()
    result = TrainResult(model, class_map, history, None, time.time() - t0)
    if out_dir is not None:
        result.checkpoint = write_checkpoint_dir(model, Path(out_dir), {"train_config": config.to_json(),
                                                                         "class_map": class_map, "history": history,
                                                                         "image_size": size})
    return result


def write_checkpoint_dir(model: Recognizer, out_dir: Path, extra: dict) -> Path:
    """Write into a staging folder and rename it into place: a crash leaves no partial model."""
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    try:
        save_recognizer(model, staging, extra=extra)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # a failed write leaves neither a partial model nor litter
        raise
    # the earlier model is moved aside, not deleted, until the new one is in place
    old = out_dir.with_name(f".{out_dir.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir
