"""The weather styles of the synthetic Diverse Weather domains: night darkness with headlight
glows, dusk tint with rain streaks, rain at night, fog growing with distance; a target style
blends with the clear-day one at a strength."""
import cv2
import numpy as np


def _rain(img: np.ndarray, rng, strength: float) -> np.ndarray:
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.float32)
    n = int(0.004 * w * h)
    starts = np.stack([rng.integers(0, w, n), rng.integers(-10, h, n)], 1)
    length = rng.integers(6, 15, n)
    slant = np.tan(np.deg2rad(rng.uniform(10, 20)))
    ends = starts + np.stack([length * slant, length], 1).astype(np.int64)
    cv2.polylines(layer, [np.stack([s, e]).astype(np.int32) for s, e in zip(starts, ends)], False,
                  1.0, 1)
    a = strength * cv2.GaussianBlur(layer, (3, 3), 0)[..., None]
    return img * (1 - a) + 220.0 * a


def _darken(img: np.ndarray, gamma: float, gain: float) -> np.ndarray:
    return 255.0 * (img / 255.0) ** gamma * gain


def _glows(img: np.ndarray, rng, horizon: int) -> np.ndarray:
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(int(rng.integers(2, 6))):
        cx, cy, sigma = rng.uniform(0, w), rng.uniform(horizon, h), rng.uniform(5, 14)
        g = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))[..., None]
        img = img + g * np.array([170, 230, 255], np.float32)
    return img


# Strength of each target style in the generated evaluation tree (1 = the full style, which the
# stand-ins' pretraining world shows). Calibrated once, with the baseline detector only, so that
# it keeps about the share of its day-clear AP50 that the paper's baseline (Faster R-CNN, CLIP
# the Gap Table 1: 48.1 -> 34.4 / 26.0 / 12.4 / 32.0) keeps on the real targets: at full
# strength it kept 0-24 % (docs/miniature_world.md, calibration).
TARGET_STRENGTH = {"night_sunny": 0.25, "dusk_rainy": 0.65, "night_rainy": 0.4,
                   "daytime_foggy": 0.5}


def stylize(img: np.ndarray, domain: str, rng, horizon: int, strength: float = 1.0) -> np.ndarray:
    """``img`` in the style of ``domain``; a target style at ``strength`` < 1 is blended with
    the clear-day one (same random draws at every strength)."""
    x = img.astype(np.float32)
    day = x * 1.05 + 10
    if domain == "daytime_clear":
        x = day
    elif domain == "night_sunny":
        x = _glows(_darken(x, 1.8, 0.45), rng, horizon)
    elif domain == "dusk_rainy":
        x = _rain(x * np.array([0.62, 0.78, 1.05], np.float32), rng, 0.45)
    elif domain == "night_rainy":
        x = _rain(_darken(x, 1.8, 0.4), rng, 0.3)
    elif domain == "daytime_foggy":
        h = x.shape[0]
        a = rng.uniform(0.6, 0.8) * (1 - np.arange(h, dtype=np.float32) / h) ** 0.8 + 0.1
        x = x * (1 - a[:, None, None]) + 205.0 * a[:, None, None]
    else:
        raise ValueError(f"Unknown Diverse Weather domain {domain!r}")
    if strength != 1.0:
        x = strength * x + (1.0 - strength) * day
    return np.clip(x, 0, 255).astype(np.uint8)
