"""Shape a predictor's answers for people and programs: the top classes of each image as a
table or JSON, and the image each model saw as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from fashion.storage.classes import CLASS_NAMES


def input_png(image: np.ndarray) -> bytes:
    """Return a (28, 28) image or an (S, S, 3) photo in [0, 1], as the model saw it, as PNG
    bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def write_inputs(folder: Path, names: list[str], images) -> list[Path]:
    """Write each image the model saw as `folder/<input name>.28x28.png` (`.64x64.png` for a
    photo model's); return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (name, image) in enumerate(zip(names, images, strict=True)):
        size = "x".join(map(str, image.shape[:2]))
        stem = Path(name.replace("[", "_").replace("]", "")).name
        path = folder / f"{stem}.{size}.png"
        if path in paths:  # the same file name in two folders
            path = folder / f"{stem}.{i}.{size}.png"
        path.write_bytes(input_png(image))
        paths.append(path)
    return paths


def top_classes(probabilities: np.ndarray, k: int = 3) -> list[dict]:
    """Return the k most probable classes of one softmax output, best first."""
    best = np.argsort(probabilities)[::-1][:k]
    return [{"class_id": int(i), "label": CLASS_NAMES[i], "probability": float(probabilities[i])}
            for i in best]


def predictions(names: list[str], probabilities: np.ndarray, k: int = 3,
                not_sure: np.ndarray | None = None) -> list[dict]:
    """Return `[{"file": name, "top": [...]}, ...]` in input order, with `"not_sure": bool`
    in each when flags are given."""
    results = [{"file": name, "top": top_classes(p, k)}
               for name, p in zip(names, probabilities, strict=True)]
    for result, flag in zip(results, [] if not_sure is None else not_sure, strict=False):
        result["not_sure"] = bool(flag)
    return results


def format_table(results: list[dict]) -> str:
    """Return results as an aligned text table: the file, then its top classes."""
    if not results:
        return ""
    rows = [[r["file"]] + [f"{t['label']} {t['probability']:.2f}" for t in r["top"]]
            + (["(not sure)" if r["not_sure"] else ""] if "not_sure" in r else [])
            + ([f"saw {r['input']}"] if "input" in r else []) for r in results]
    k = max(len(r["top"]) for r in results)
    header = ["file"] + [f"top-{i + 1}" for i in range(k)]
    widths = [max(len(row[c]) for row in [header, *rows] if c < len(row))
              for c in range(max(map(len, rows)))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
                     for row in [header, *rows])
