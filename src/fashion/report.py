"""Figures of a run, written as PNG files with matplotlib."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fashion import CLASS_NAMES  # noqa: E402


def plot_samples(images: np.ndarray, labels: np.ndarray, path: Path, per_class: int = 5) -> Path:
    """Save a grid of `per_class` images of every class, each titled with its class name."""
    fig, axes = plt.subplots(per_class, len(CLASS_NAMES),
                             figsize=(1.3 * len(CLASS_NAMES), 1.45 * per_class))
    for class_id, name in enumerate(CLASS_NAMES):
        rows = np.flatnonzero(labels == class_id)[:per_class]
        for row, ax in enumerate(axes[:, class_id]):
            ax.axis("off")
            if row < len(rows):
                ax.imshow(images[rows[row]].squeeze(), cmap="gray_r", vmin=0, vmax=1)
                ax.set_title(name, fontsize=8)
    fig.suptitle("Fashion-MNIST training images, by class")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
