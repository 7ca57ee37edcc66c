"""Find the garment in a photograph and draw it as Fashion-MNIST draws garments.

The dataset's own preprocessing (`images.to_fashion_mnist`) trims a plain background; on a
phone photo (a garment on a carpet, a bed, a wooden floor) nothing is plain, so it keeps the
whole frame and the model sees a rectangle. Here OpenCV's GrabCut separates the garment from
its surroundings, the photo is cropped to the garment, the background set to black and the
garment's tones negated and stretched to the range the dataset's garments span. Every step was
measured on a development set of phone photos (docs/benchmarks.md, "Real photos").
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

# Side in pixels of the copy GrabCut works on: the result is drawn at 28x28; 96 lost 5 points
# of top-1 on the development photos, 160 gained none for 1.6 times the pixels.
GRABCUT_SIDE = 128
# GrabCut's own default is 5; 2 scored within a point of 3 and 5, at less of the time.
GRABCUT_ITERATIONS = 2
# The frame's outer 2% is taken as surely background: phone photos frame a garment tightly
# (4% lost 3 points of top-1, 8% lost 8: they cut into the garment).
MARGIN = 0.02
# Share of the border that must be within the dataset's trim tolerance of its median for the
# photo to count as a plain background, which the dataset's own preprocessing handles best
# (product shots, drawings, upscaled dataset images: JPEG noise keeps them near 0.96).
PLAIN_BORDER = 0.9
# The dataset's garments (light on black) span about 0.35 to 0.85 from their 10th to their 90th
# percentile of brightness; a phone photo's garment is stretched to match.
TONE_RANGE = (0.4, 0.9)
TONE_PERCENTILES = (2, 98)
# A garment differs in colour from what is around it: the distance between the mean colours
# (CIELAB) of GrabCut's foreground and background, over their pooled spread, is above 0.65 in
# 90% of the development photos; a landscape scores 0.2. Below this nothing was found, and the
# answer is "not sure" (it costs half a point of top-1 on the development photos).
MIN_SEPARATION = 0.3


def is_see_through(image: Image.Image) -> bool:
    """Say whether an image has transparent pixels (a cut-out), not merely an alpha channel: a
    phone photo saved as an RGBA PNG is opaque and stays a photo."""
    if not image.has_transparency_data:
        return False
    if "A" not in image.getbands():  # a palette or grey image with a transparent colour
        return True
    return image.getchannel("A").getextrema()[0] < 255


def has_plain_background(gray: np.ndarray, tolerance: float) -> bool:
    """Say whether the border of a uint8/float gray image is one flat colour, as in a product
    shot, so that trimming it (the dataset authors' way) finds the garment."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]]).astype(np.float32)
    return bool((np.abs(border - np.median(border)) <= tolerance).mean() >= PLAIN_BORDER)


def work_copy(image: Image.Image) -> np.ndarray:
    """Return a small RGB uint8 copy of `image`, its longest side at most GRABCUT_SIDE pixels."""
    scale = GRABCUT_SIDE / max(image.size)
    if scale < 1:  # reducing_gap: box-reduce first, then filter: 12 MP in ~10 ms, not ~60
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(image.convert("RGB"))


def find_garment(rgb: np.ndarray, seed: int = 0) -> np.ndarray:
    """Return a boolean mask of the garment in an RGB uint8 image: GrabCut's foreground inside
    the frame less its MARGIN, as its largest blob with its holes filled.

    An empty mask means nothing stood out from the background (see MIN_SEPARATION).
    """
    height, width = rgb.shape[:2]
    dx, dy = max(1, round(width * MARGIN)), max(1, round(height * MARGIN))
    if width - 2 * dx < 2 or height - 2 * dy < 2:
        return np.ones((height, width), bool)
    labels = np.zeros((height, width), np.uint8)
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(seed)  # GrabCut's colour models start from k-means with random centres
    cv2.grabCut(np.ascontiguousarray(rgb[..., ::-1]), labels, (dx, dy, width - 2 * dx,
                height - 2 * dy), background, foreground, GRABCUT_ITERATIONS,
                cv2.GC_INIT_WITH_RECT)
    mask = _largest_blob((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD))
    return mask if separation(rgb, mask) >= MIN_SEPARATION else np.zeros_like(mask)


def separation(rgb: np.ndarray, mask: np.ndarray) -> float:
    """Return how far the mean CIELAB colours inside and outside `mask` lie apart, in units of
    their pooled standard deviation (0 when either side is empty)."""
    if mask.all() or not mask.any():
        return 0.0
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    inside, outside = lab[mask], lab[~mask]
    spread = np.sqrt((inside.var(axis=0).sum() + outside.var(axis=0).sum()) / 2)
    return float(np.linalg.norm(inside.mean(axis=0) - outside.mean(axis=0)) / max(spread, 1e-6))


def _largest_blob(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected blob of `mask`, its holes (the print on a T-shirt) filled."""
    count, blobs, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    if count <= 1:
        return np.zeros_like(mask, bool)
    blob = (blobs == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])).astype(np.uint8)
    outside = np.pad(blob, 1)
    cv2.floodFill(outside, None, (0, 0), 1)  # the background reachable from the corner
    return (blob == 1) | (outside[1:-1, 1:-1] == 0)


def draw_garment(gray: np.ndarray, mask: np.ndarray, invert: bool = True) -> np.ndarray:
    """Crop a gray image (0-255) to its garment mask and return float32 tones in [0, 1], black
    outside the garment.

    Inside, brightness is negated (`invert`: the dataset negated product photos, so a dark
    garment is light) and stretched from its TONE_PERCENTILES to TONE_RANGE: a phone's light
    and exposure vary, the dataset's garments do not.
    """
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    tones, inside = gray[box].astype(np.float32), mask[box]
    if invert:
        tones = 255.0 - tones
    low, high = np.percentile(tones[inside], TONE_PERCENTILES)
    stretched = np.clip((tones - low) / max(high - low, 1.0), 0.0, 1.0)
    darkest, brightest = TONE_RANGE
    return np.where(inside, darkest + (brightest - darkest) * stretched, 0.0).astype(np.float32)


def photo_garment(image: Image.Image, invert: bool, tolerance: float) -> np.ndarray | None:
    """Return the garment of a photo as float32 tones on black, not yet fitted to 28x28; all
    black when no garment stands out. Return None for a plain background (border within
    `tolerance` of one level) with a garment on it, which the dataset's own trimming handles as
    the authors did."""
    if image.mode[0] in "IF" or is_see_through(image):
        # A 16-bit scan or a cut-out: the dataset path scales the one, and lays the other on
        # white, a plain background it trims exactly.
        return None
    rgb = work_copy(image)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    mask = find_garment(rgb)
    if not mask.any():  # a blank wall, a landscape: nothing to answer about
        return np.zeros((1, 1), np.float32)
    if has_plain_background(gray, tolerance):
        return None
    return draw_garment(gray, mask, invert)
