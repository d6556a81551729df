"""Procedural multi-domain classification dataset in the DomainBed folder layout.

Five shape classes (circle, ring, square, star, triangle), centred with a small random offset,
random size and rotation, rendered in five styles: ``photo`` (muted gradient background, shaded
shape), ``sketch`` (dark pencil outlines on white paper), ``cartoon`` (saturated flat colours,
thick black outline), ``painting`` (noisy textured brush strokes) and ``neon`` (a glowing
coloured outline on a dark wall). Colours are drawn independently of the class in every style:
only the shape tells the class.
"""
import json
import os
import time
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

from domaingen.data.datasets.classification import SYNTHETIC_DOMAINS, SYNTHETIC_DOMAINS_CLASSES

from .ownership import clear_for_generation, tree_files

__all__ = ["generate_domains"]

FOLDER = "synthetic_domains"
MARKER = "synthetic.json"
_VERSION = 4  # 3: object-centred shapes, colours independent of the class, the neon style;
# 4: paintings with the shape apart in value, thicker neon tubes
_MIN_SIZE = 32
_AA = cv2.LINE_AA


def _bgr(hue: float, sat: float, val: float) -> np.ndarray:
    """BGR float colour of an OpenCV HSV triple (hue in [0, 180))."""
    hsv = np.array([[[hue % 180, np.clip(sat, 0, 255), np.clip(val, 0, 255)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _shape_mask(cls: str, size: int, rng) -> np.ndarray:
    """Float mask in [0, 1] (anti-aliased) of one randomly placed, sized and rotated shape."""
    r = rng.uniform(0.24, 0.36) * size
    cx, cy = size / 2 + rng.uniform(-0.08, 0.08, 2) * size
    angle = rng.uniform(0, 2 * np.pi)
    mask = np.zeros((size, size), np.uint8)
    center = (int(round(cx)), int(round(cy)))
    if cls in ("circle", "ring"):
        cv2.circle(mask, center, int(round(r)), 255, -1, _AA)
        if cls == "ring":
            cv2.circle(mask, center, int(round(r * rng.uniform(0.45, 0.6))), 0, -1, _AA)
    else:
        if cls == "star":
            n, radii = 10, np.where(np.arange(10) % 2 == 0, r, r * rng.uniform(0.38, 0.48))
        else:
            n = {"square": 4, "triangle": 3}[cls]
            radii = np.full(n, r)
        t = angle + 2 * np.pi * np.arange(n) / n
        pts = np.stack([cx + radii * np.cos(t), cy + radii * np.sin(t)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255, _AA)
    return mask.astype(np.float32) / 255.0


def _contours(mask: np.ndarray):
    binary = (mask > 0.5).astype(np.uint8)
    return cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)[0]


def _composite(bg: np.ndarray, fg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    a = mask[..., None]
    return bg * (1 - a) + fg * a


def _hues(rng) -> Tuple[float, float]:
    """Background hue and shape hue, drawn whatever the class (colour tells nothing of it)."""
    hf = rng.uniform(0, 180)
    return hf + rng.uniform(25, 155), hf


def _photo(mask: np.ndarray, rng) -> np.ndarray:
    size = mask.shape[0]
    hb, hf = _hues(rng)
    ramp = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    top = _bgr(hb, rng.uniform(20, 90), rng.uniform(150, 235))
    bottom = _bgr(hb, rng.uniform(20, 90), rng.uniform(100, 180))
    bg = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (size, size, 3))
    light = (0.7 + 0.6 * np.linspace(0, 1, size, dtype=np.float32))[None, :, None]
    if rng.integers(0, 2):
        light = light[:, ::-1]
    fg = _bgr(hf, rng.uniform(80, 200), rng.uniform(90, 190)) * light
    img = _composite(bg, fg, cv2.GaussianBlur(mask, (3, 3), 0))
    return img + rng.normal(0, 4, img.shape)


def _sketch(mask: np.ndarray, rng) -> np.ndarray:
    size = mask.shape[0]
    img = (np.full((size, size, 3), rng.uniform(235, 252), np.float32)
           + rng.normal(0, 3, (size, size, 1)))
    ink = float(rng.uniform(10, 70))
    contours = _contours(mask)
    if rng.integers(0, 2):  # light hatching inside the shape
        hatch = np.zeros((size, size), np.float32)
        step = int(rng.integers(3, 6))
        for k in range(-size, size, step):
            cv2.line(hatch, (k, size), (k + size, 0), 1.0, 1, _AA)
        img = _composite(img, np.full(3, 170.0, np.float32), hatch * (mask > 0.5) * 0.6)
    img = np.ascontiguousarray(img)
    cv2.drawContours(img, contours, -1, (ink, ink, ink), 1, _AA)
    shift = rng.integers(-1, 2, 2)  # a second, slightly offset pencil stroke
    shifted = [c + shift[None, None, :] for c in contours]
    cv2.drawContours(img, shifted, -1, (ink + 60,) * 3, 1, _AA)
    return img


def _cartoon(mask: np.ndarray, rng) -> np.ndarray:
    size = mask.shape[0]
    hb, hf = _hues(rng)
    bg = np.broadcast_to(_bgr(hb, rng.uniform(170, 255), rng.uniform(200, 255)), (size, size, 3))
    fg = _bgr(hf, rng.uniform(200, 255), rng.uniform(180, 255))
    img = np.ascontiguousarray(_composite(bg, fg, (mask > 0.5).astype(np.float32)))
    thickness = max(2, int(round(size * rng.uniform(0.035, 0.06))))
    cv2.drawContours(img, _contours(mask), -1, (0, 0, 0), thickness, _AA)
    return img


def _strokes(size: int, base: np.ndarray, rng) -> np.ndarray:
    """Canvas covered with short thick brush strokes of colours jittered around ``base``."""
    canvas = np.ascontiguousarray(np.broadcast_to(base, (size, size, 3)), np.float32)
    n = max(20, size * size // 30)
    starts = rng.uniform(0, size, (n, 2))
    angles = (rng.uniform(0, np.pi, n) if rng.integers(0, 2)
              else rng.normal(rng.uniform(0, np.pi), 0.3, n))
    lengths = rng.uniform(0.05, 0.15, n) * size
    ends = starts + lengths[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)
    colors = np.clip(base + rng.normal(0, 35, (n, 3)), 0, 255)
    widths = rng.integers(1, max(2, size // 16) + 1, n)
    for s, e, c, w in zip(starts.astype(int), ends.astype(int), colors, widths):
        cv2.line(canvas, tuple(map(int, s)), tuple(map(int, e)), tuple(map(float, c)), int(w), _AA)
    return canvas


def _painting(mask: np.ndarray, rng) -> np.ndarray:
    size = mask.shape[0]
    hb, hf = _hues(rng)
    dark, light = rng.uniform(70, 120), rng.uniform(170, 230)  # the shape stands out in value
    vb, vf = (dark, light) if rng.integers(0, 2) else (light, dark)
    bg = _strokes(size, _bgr(hb, rng.uniform(60, 160), vb), rng)
    fg = _strokes(size, _bgr(hf, rng.uniform(120, 230), vf), rng)
    edge = cv2.GaussianBlur(mask, (5, 5), 0)
    img = cv2.GaussianBlur(_composite(bg, fg, edge), (3, 3), 0)
    return img + rng.normal(0, 9, img.shape)


def _neon(mask: np.ndarray, rng) -> np.ndarray:
    size = mask.shape[0]
    _, hf = _hues(rng)
    img = (np.full((size, size, 3), rng.uniform(10, 45), np.float32)
           + rng.normal(0, 3, (size, size, 1)))
    tube = np.zeros((size, size), np.float32)
    cv2.drawContours(tube, _contours(mask), -1, 1.0, max(2, size // 24), _AA)
    glow = cv2.GaussianBlur(tube, (0, 0), size / 24)
    color = _bgr(hf, rng.uniform(150, 255), 255)
    img = img + glow[..., None] * color * 2.5 + tube[..., None] * (0.5 * color + 127)
    return img + rng.normal(0, 4, img.shape)


_STYLES: Dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "photo": _photo,
    "sketch": _sketch,
    "cartoon": _cartoon,
    "painting": _painting,
    "neon": _neon,
}


def _render(domain_idx: int, class_idx: int, i: int, seed: int, size: int) -> bytes:
    rng = np.random.default_rng([seed, domain_idx, class_idx, i])
    mask = _shape_mask(SYNTHETIC_DOMAINS_CLASSES[class_idx], size, rng)
    style = _STYLES[SYNTHETIC_DOMAINS[domain_idx]]
    img = np.clip(style(mask, rng), 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for domain {domain_idx} class {class_idx} "
                           f"image {i}")
    return jpg.tobytes()


def generate_domains(root: str, seed: int = 0, num_per_class: int = 12,
                     image_size: int = 64) -> dict:
    """Write ``<root>/synthetic_domains/<domain>/<class>/<i>.jpg``; returns a summary dict.

    ``root`` is the datasets root (registered as ``synthetic_domains_<domain>_<split>``).
    Images are ``image_size`` px squares, byte-identical for the same parameters; when the
    ``synthetic.json`` marker written last matches them, nothing is rewritten, and different
    parameters regenerate the tree.
    """
    if image_size < _MIN_SIZE:
        raise ValueError(f"image_size must be at least {_MIN_SIZE}, got {image_size}")
    if num_per_class < 1:
        raise ValueError(f"num_per_class must be positive, got {num_per_class}")
    params = {
        "generator": "domains",
        "version": _VERSION,
        "seed": int(seed),
        "num_per_class": int(num_per_class),
        "image_size": int(image_size),
    }
    out = os.path.join(root, FOLDER)
    marker = os.path.join(out, MARKER)
    previous = None
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as fh:
            previous = json.load(fh)
    class_dirs = [os.path.join(out, d, c) for d in SYNTHETIC_DOMAINS
                  for c in SYNTHETIC_DOMAINS_CLASSES]
    if (previous is not None and previous.get("params") == params
            and all(map(os.path.isdir, class_dirs))):
        return {**previous, "root": out, "generated": False, "seconds": 0.0}
    clear_for_generation(out, SYNTHETIC_DOMAINS, marker, previous)

    start = time.perf_counter()
    for d, domain in enumerate(SYNTHETIC_DOMAINS):
        for c, cls in enumerate(SYNTHETIC_DOMAINS_CLASSES):
            class_dir = os.path.join(out, domain, cls)
            os.makedirs(class_dir, exist_ok=True)
            for i in range(params["num_per_class"]):
                with open(os.path.join(class_dir, f"{i:04d}.jpg"), "wb") as fh:
                    fh.write(_render(d, c, i, params["seed"], params["image_size"]))
    summary = {
        "params": params,
        "domains": list(SYNTHETIC_DOMAINS),
        "classes": list(SYNTHETIC_DOMAINS_CLASSES),
        "images": len(class_dirs) * params["num_per_class"],
        "files": tree_files(out, SYNTHETIC_DOMAINS),
    }
    with open(marker, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")
    return {**summary, "root": out, "generated": True, "seconds": time.perf_counter() - start}
