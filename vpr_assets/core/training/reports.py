"""Plots logged with each model: the loss curve and a grid of retrieval examples."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

from vpr_assets.core.images.synth import font


def loss_curve_png(history: Sequence[dict]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = [h for h in history if h.get("phase") != "eval"]  # training epochs of both phases
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    epochs = list(range(1, len(history) + 1))
    ax.plot(epochs, [h["loss"] for h in history], marker="o", label="ArcFace loss")
    ax.set_xlabel("epoch (neck phase, then fine-tuning)")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(epochs, [h["train_accuracy"] for h in history], color="tab:green", marker="s", label="train accuracy")
    ax2.set_ylim(0, 1.05)
    ax.set_title("training")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def retrieval_grid_png(rankings: dict[str, list[str]], labels: dict[str, str], root: Path,
                       n_queries: int = 6, k: int = 5, cell: int = 110) -> bytes:
    """Rows: a query then its top-k answers, framed green (same landmark) or red."""
    queries = [q for q in rankings if labels.get(q, "none") != "none"][:n_queries]
    grid = Image.new("RGB", ((k + 1) * cell, max(1, len(queries)) * (cell + 14)), "white")
    draw = ImageDraw.Draw(grid)
    f = font(11)
    for r, q in enumerate(queries):
        for c, name in enumerate([q] + rankings[q][:k]):
            try:
                im = Image.open(root / name).convert("RGB")
            except Exception:
                continue
            im.thumbnail((cell - 8, cell - 8))
            x, y = c * cell + 4, r * (cell + 14) + 4
            grid.paste(im, (x, y))
            if c:
                colour = (30, 160, 60) if labels.get(name) == labels.get(q) else (200, 40, 40)
                draw.rectangle([x - 2, y - 2, x + im.width + 1, y + im.height + 1], outline=colour, width=3)
            draw.text((x, y + cell - 8), (labels.get(name, "") or "")[:16], fill=(0, 0, 0), font=f)
    buf = io.BytesIO()
    grid.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
