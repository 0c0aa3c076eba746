"""ArcFace training loop: class-balanced batches, warm-up + cosine schedule, AMP on GPU.

CPU-friendly defaults (small input, frozen early stages, few epochs) finish in minutes on the demo
and test data; the same code runs the full setting (448 px, all stages, many epochs) on a GPU.
Deterministic given a seed (single-process loading, seeded sampler and augmentations).
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import DataLoader

from vpr_assets.core.training.augment import normalise, seed_everything, train_transform
from vpr_assets.core.training.data import CardDataset, ClassBalancedSampler, TrainItem, class_map_of
from vpr_assets.core.training.recognizer import Recognizer, RecognizerConfig, save_recognizer
from vpr_assets.core.vision.models import ArcMarginProduct, arcface_loss, build_embedder


@dataclass
class TrainConfig:
    variant: str = "image_clusters"
    model_name: str = "lite0_gem512"
    image_size: int = 224  # 448 on GPU for the full setting
    epochs: int = 4
    batch_size: int = 16
    per_class: int | None = None  # items drawn per class per epoch (default: median class size)
    min_class_size: int = 3
    optimizer: str = "adamw"  # or "sgd"
    lr: float = 3e-4
    backbone_lr_mult: float = 0.1
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    arc_s: float = 30.0
    arc_m: float = 0.2
    freeze_stages: int = 5  # EfficientNet block stages kept frozen (0 = train everything)
    allow_flip: bool = False
    seed: int = 0
    amp: bool = True  # used only on CUDA
    device: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    model: Recognizer
    class_map: dict[str, int]
    history: list[dict] = field(default_factory=list)
    checkpoint: Path | None = None
    seconds: float = 0.0


def _freeze(model: Recognizer, stages: int) -> None:
    bb = model.embedder.backbone
    frozen = [getattr(bb, "conv_stem", None), getattr(bb, "bn1", None)] + list(bb.blocks[:stages])
    for mod in frozen:
        if mod is None:
            continue
        for p in mod.parameters():
            p.requires_grad_(False)


def _set_train_mode(model: Recognizer, stages: int) -> None:
    model.train()
    bb = model.embedder.backbone
    for mod in [getattr(bb, "conv_stem", None), getattr(bb, "bn1", None)] + list(bb.blocks[:stages]):
        if mod is not None:
            mod.eval()  # frozen BatchNorm keeps its ImageNet statistics


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / max(1, warmup)
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def train(
    config: TrainConfig,
    items: Sequence[TrainItem],
    out_dir: Path | None = None,
    log: Callable[[dict], None] | None = None,
    init_from: Recognizer | None = None,
) -> TrainResult:
    """Train a recognizer; writes the checkpoint atomically (staging folder, then rename)."""
    t0 = time.time()
    seed_everything(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    class_map = class_map_of(items, config.min_class_size)
    if len(class_map) < 2:
        raise ValueError(f"need at least 2 classes with >= {config.min_class_size} items, got {len(class_map)}")
    model = init_from or Recognizer(build_embedder(config.model_name, pretrained=True), RecognizerConfig(config.variant))
    _freeze(model, config.freeze_stages)
    head = ArcMarginProduct(model.embedding_dim, len(class_map), s=config.arc_s, m=config.arc_m)
    model.to(device)
    head.to(device)

    dataset = CardDataset(items, class_map, train_transform(config.image_size, config.allow_flip))
    sampler = ClassBalancedSampler(dataset.labels(), config.per_class, seed=config.seed)
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=0, drop_last=False)
    backbone_params = [p for p in model.embedder.backbone.parameters() if p.requires_grad]
    other = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("embedder.backbone.")]
    groups = [{"params": backbone_params, "lr_mult": config.backbone_lr_mult},
              {"params": other + list(head.parameters()), "lr_mult": 1.0}]
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay, nesterov=True)
    elif config.optimizer == "adamw":
        opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    else:
        raise ValueError(f"optimizer must be adamw or sgd, got {config.optimizer!r}")
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    steps_per_epoch = max(1, len(loader))
    total = steps_per_epoch * config.epochs
    warmup = int(config.warmup_epochs * steps_per_epoch)
    history: list[dict] = []
    step = 0
    mean, std = model.embedder.config.mean, model.embedder.config.std
    for epoch in range(config.epochs):
        sampler.set_epoch(epoch)
        _set_train_mode(model, config.freeze_stages)
        head.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y, text, has_text in loader:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, warmup, config.lr) * g["lr_mult"]
            x = normalise(x.to(device), mean, std)
            y, text, has_text = y.to(device), text.to(device), has_text.to(device)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                feats = model.features(x, text, has_text)
                logits = head(feats.float(), y)
                loss = arcface_loss(logits, y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            with torch.no_grad():
                correct += int((head(feats.float()).argmax(1) == y).sum())
            loss_sum += loss.item() * len(y)
            seen += len(y)
            step += 1
        rec = {"epoch": epoch + 1, "loss": loss_sum / max(1, seen), "train_accuracy": correct / max(1, seen),
               "lr": opt.param_groups[-1]["lr"], "seconds": time.time() - t0}
        history.append(rec)
        if log:
            log(rec)
    model.eval().cpu()
    result = TrainResult(model, class_map, history, None, time.time() - t0)
    if out_dir is not None:
        result.checkpoint = write_checkpoint_dir(model, Path(out_dir), {"train_config": config.to_json(),
                                                                         "class_map": class_map, "history": history})
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
