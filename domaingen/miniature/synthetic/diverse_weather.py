"""Procedural stand-in for the Diverse Weather benchmark, written in its on-disk layout.

Each image is a drawn street scene with 1-4 objects of the 7 Diverse Weather classes,
each class with its own shape and colour, then restyled for one of the 5 weather domains.
"""
import json
import os
import time
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from domaingen.data.datasets.builtin import DIVERSE_WEATHER_CLASSES, DIVERSE_WEATHER_DOMAINS

from .ownership import clear_for_generation, tree_files
from .weather_styles import TARGET_STRENGTH, stylize

__all__ = ["generate_diverse_weather"]

MARKER = "synthetic.json"
_VERSION = 1
SOURCE_DOMAIN = "daytime_clear"
# width / height of each class's box
_ASPECT = {
    "bus": (2.2, 3.0),
    "bike": (1.5, 1.9),
    "car": (1.7, 2.3),
    "motor": (1.4, 1.8),
    "person": (0.35, 0.5),
    "rider": (0.85, 1.1),
    "truck": (1.8, 2.4),
}
_MIN_SIZE, _MAX_SIZE = 20, 120
_AA = cv2.LINE_AA


class _Frame:
    """Maps normalized (u, v) in [0, 1]^2 to pixels of a box, optionally mirrored."""

    def __init__(self, box: Tuple[int, int, int, int], flip: bool):
        self.x0, self.y0, self.x1, self.y1 = box
        self.w, self.h = self.x1 - self.x0, self.y1 - self.y0
        self.flip = flip

    def pt(self, u: float, v: float) -> Tuple[int, int]:
        u = 1.0 - u if self.flip else u
        return int(round(self.x0 + u * self.w)), int(round(self.y0 + v * self.h))

    def rect(self, img, u0, v0, u1, v1, color):
        (xa, ya), (xb, yb) = self.pt(u0, v0), self.pt(u1, v1)
        cv2.rectangle(img, (min(xa, xb), min(ya, yb)), (max(xa, xb), max(ya, yb)), color, -1)

    def poly(self, img, uvs: Sequence[Tuple[float, float]], color):
        cv2.fillPoly(img, [np.array([self.pt(u, v) for u, v in uvs], np.int32)], color, _AA)

    def line(self, img, uv0, uv1, color, thickness=1):
        cv2.line(img, self.pt(*uv0), self.pt(*uv1), color, max(1, thickness), _AA)

    def wheel(self, img, u: float, radius: float, color, filled: bool):
        """Wheel of ``radius`` (fraction of box height) resting on the box bottom."""
        r = max(2, int(round(radius * self.h)))
        cx, _ = self.pt(u, 1.0)
        thickness = -1 if filled else max(1, r // 5)
        cv2.circle(img, (cx, self.y1 - r), r, color, thickness, _AA)


def _jitter(rng, color, amount=20):
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)


def _draw_bicycle(img, f: _Frame, frame_color, v_top: float = 0.0):
    """Two thin wheels with a triangular frame; occupies v in [v_top, 1]."""
    hr = 0.36 * (1.0 - v_top)
    wheel_u = hr * f.h / max(f.w, 1)
    rear, front = (wheel_u, 1 - hr), (1 - wheel_u, 1 - hr)
    seat, bar = (0.42, v_top + 0.25 * (1 - v_top)), (0.78, v_top)
    for u, _ in (rear, front):
        f.wheel(img, u, hr, (40, 40, 40), filled=False)
    t = max(1, f.h // 30)
    crank = (0.62, 1 - hr)
    for a, b in ((rear, seat), (seat, front), (seat, crank), (crank, rear), (front, bar)):
        f.line(img, a, b, frame_color, t)
    f.line(img, (0.7, v_top), (0.86, v_top), (30, 30, 30), t)


def _draw_person(img, f: _Frame, rng, shirt, v_bottom: float = 1.0, u0: float = 0.0,
                 u1: float = 1.0):
    """Head, elliptical torso and legs inside u in [u0, u1], v in [0, v_bottom]."""
    uc, uw, h = (u0 + u1) / 2, (u1 - u0), v_bottom
    skin = _jitter(rng, (140, 180, 225), 15)
    head_r = max(2, int(round(min(0.3 * uw * f.w, 0.11 * h * f.h))))
    hx, _ = f.pt(uc, 0)
    cv2.circle(img, (hx, f.y0 + head_r), head_r, skin, -1, _AA)
    cx, cy = f.pt(uc, 0.38 * h)
    axes = (max(2, int(0.45 * uw * f.w)), max(3, int(0.2 * h * f.h)))
    cv2.ellipse(img, (cx, cy), axes, 0, 0, 360, shirt, -1, _AA)
    legs = _jitter(rng, (70, 45, 30), 15)
    t = max(2, int(0.18 * uw * f.w))
    f.line(img, (uc - 0.15 * uw, 0.55 * h), (uc - 0.22 * uw, h), legs, t)
    f.line(img, (uc + 0.15 * uw, 0.55 * h), (uc + 0.22 * uw, h), legs, t)


def _draw_bus(img, f, rng):
    f.rect(img, 0, 0, 1, 0.86, _jitter(rng, (0, 200, 255)))
    n = int(rng.integers(4, 7))
    for i in range(n):
        u = 0.06 + i * 0.9 / n
        f.rect(img, u, 0.12, u + 0.62 / n, 0.42, (235, 205, 160))
    f.rect(img, 0.9, 0.12, 0.98, 0.75, (90, 70, 50))
    for u in (0.18, 0.8):
        f.wheel(img, u, 0.16, (20, 20, 20), filled=True)


def _draw_bike(img, f, rng):
    _draw_bicycle(img, f, _jitter(rng, (40, 160, 40)))


def _draw_car(img, f, rng):
    body = _jitter(rng, (30, 30, 210))
    f.poly(img, [(0.22, 0.05), (0.68, 0.05), (0.82, 0.42), (0.1, 0.42)], body)
    f.poly(img, [(0.27, 0.12), (0.45, 0.12), (0.45, 0.38), (0.19, 0.38)], (230, 200, 170))
    f.poly(img, [(0.5, 0.12), (0.65, 0.12), (0.74, 0.38), (0.5, 0.38)], (230, 200, 170))
    f.rect(img, 0, 0.4, 1, 0.82, body)
    for u in (0.2, 0.8):
        f.wheel(img, u, 0.3, (20, 20, 20), filled=True)


def _draw_motor(img, f, rng):
    body = _jitter(rng, (60, 50, 50), 10)
    for u in (0.16, 0.84):
        f.wheel(img, u, 0.34, (15, 15, 15), filled=True)
        f.wheel(img, u, 0.12, (170, 170, 170), filled=True)
    f.poly(img, [(0.2, 0.45), (0.55, 0.3), (0.78, 0.35), (0.7, 0.7), (0.3, 0.72)], body)
    f.rect(img, 0.3, 0.22, 0.55, 0.32, (25, 25, 25))
    f.line(img, (0.75, 0.35), (0.85, 0.0), (180, 180, 180), max(1, f.h // 20))


def _draw_person_class(img, f, rng):
    _draw_person(img, f, rng, _jitter(rng, (180, 80, 40)))


def _draw_rider(img, f, rng):
    _draw_bicycle(img, f, _jitter(rng, (150, 40, 150)), v_top=0.45)
    _draw_person(img, f, rng, _jitter(rng, (0, 130, 240)), v_bottom=0.68, u0=0.3, u1=0.62)


def _draw_truck(img, f, rng):
    f.rect(img, 0, 0, 0.7, 0.8, _jitter(rng, (215, 215, 215), 15))
    f.rect(img, 0.02, 0.05, 0.68, 0.12, (120, 120, 120))
    f.poly(img, [(0.72, 0.3), (0.9, 0.3), (1.0, 0.55), (1.0, 0.82), (0.72, 0.82)],
           _jitter(rng, (160, 80, 20)))
    f.poly(img, [(0.78, 0.36), (0.88, 0.36), (0.95, 0.54), (0.78, 0.54)], (230, 200, 170))
    for u in (0.12, 0.5, 0.86):
        f.wheel(img, u, 0.2, (20, 20, 20), filled=True)


_DRAW = {
    "bus": _draw_bus,
    "bike": _draw_bike,
    "car": _draw_car,
    "motor": _draw_motor,
    "person": _draw_person_class,
    "rider": _draw_rider,
    "truck": _draw_truck,
}


def _background(rng, width: int, height: int) -> Tuple[np.ndarray, int]:
    """Sky, skyline and road with lane marks; returns the image and the horizon row."""
    horizon = int(height * rng.uniform(0.35, 0.5))
    img = np.empty((height, width, 3), np.float32)
    top, low = (np.array(_jitter(rng, (235, 190, 130), 15)),
                np.array(_jitter(rng, (245, 225, 200), 10)))
    t = np.linspace(0, 1, horizon, dtype=np.float32)[:, None, None]
    img[:horizon] = top * (1 - t) + low * t
    img[horizon:] = _jitter(rng, (105, 105, 105), 15)
    img = img.astype(np.uint8)
    x = 0
    while x < width:
        bw, bh = int(rng.integers(20, 60)), int(rng.integers(10, max(12, horizon - 5)))
        cv2.rectangle(img, (x, horizon - bh), (x + bw, horizon), _jitter(rng, (150, 150, 160), 30),
                      -1)
        x += bw + int(rng.integers(0, 25))
    vx = int(width * rng.uniform(0.4, 0.6))
    for end in (-0.3, 0.5, 1.3):
        cv2.line(img, (vx, horizon), (int(end * width), height), (220, 220, 220), 2, _AA)
    noise = rng.normal(0, 4, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8), horizon


def _place(rng, cls: str, width: int, height: int, horizon: int, boxes: List[Tuple[int, ...]]):
    """Box (x0, y0, x1, y1) for a new object standing on the road, overlapping others little.

    Objects lower in the image (nearer) are larger; the longer side is 20-120 px.
    """
    for _ in range(30):
        bottom = int(rng.integers(horizon + 8, height))
        depth = (bottom - horizon) / max(1, height - horizon)
        size = _MIN_SIZE + (_MAX_SIZE - _MIN_SIZE) * depth * rng.uniform(0.6, 1.0)
        aspect = rng.uniform(*_ASPECT[cls])
        w, h = (size, size / aspect) if aspect >= 1 else (size * aspect, size)
        w, h = int(min(max(w, 8), width - 1)), int(min(max(h, 8), height - 1))
        x0 = int(rng.integers(0, width - w))
        y0 = max(0, bottom - h)
        box = (x0, y0, x0 + w, y0 + h)
        if all(_iou(box, b) < 0.1 for b in boxes):
            return box
    return None


def _iou(a, b) -> float:
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _make_image(rng, first_class: str, width: int, height: int, domain: str, strength: float):
    """A stylized scene and its objects as (class, (x0, y0, x1, y1)) in 0-based pixels."""
    img, horizon = _background(rng, width, height)
    classes = [first_class] + [str(c) for c in rng.choice(DIVERSE_WEATHER_CLASSES,
                                                          int(rng.integers(0, 4)))]
    objects = []
    for cls in classes:
        box = _place(rng, cls, width, height, horizon, [b for _, b in objects])
        if box is not None:
            objects.append((cls, box))
    objects.sort(key=lambda o: o[1][3])  # far (higher) objects first so near ones overlap them
    for cls, box in objects:
        _DRAW[cls](img, _Frame(box, flip=bool(rng.integers(0, 2))), rng)
    return stylize(img, domain, rng, horizon, strength), objects


def _voc_xml(image_id: str, width: int, height: int, objects) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "VOC2007"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    for cls, (x0, y0, x1, y1) in objects:
        obj = ET.SubElement(root, "object")
        for tag, value in (("name", cls), ("pose", "Unspecified"), ("truncated", 0),
                           ("difficult", 0)):
            ET.SubElement(obj, tag).text = str(value)
        bnd = ET.SubElement(obj, "bndbox")
        # 1-based pixel coordinates, as in the VOC release
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), (x0, y0, x1, y1)):
            ET.SubElement(bnd, tag).text = str(value + 1)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8") + b"\n"


def _write_split(
    voc_dir: str, domain_idx: int, split: str, count: int, seed: int, size: Tuple[int, int],
    strength: float,
) -> int:
    """Write ``count`` images of one domain split; returns the number of objects."""
    width, height = size
    domain = DIVERSE_WEATHER_DOMAINS[domain_idx]
    for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(voc_dir, sub), exist_ok=True)
    ids, n_objects = [], 0
    for i in range(count):
        rng = np.random.default_rng([seed, domain_idx, ("train", "test").index(split), i])
        image_id = f"{domain}_{split}_{i:05d}"
        first = DIVERSE_WEATHER_CLASSES[i % len(DIVERSE_WEATHER_CLASSES)]  # every class appears
        img, objects = _make_image(rng, first, width, height, domain, strength)
        ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {image_id}")
        with open(os.path.join(voc_dir, "JPEGImages", f"{image_id}.jpg"), "wb") as fh:
            fh.write(jpg.tobytes())
        with open(os.path.join(voc_dir, "Annotations", f"{image_id}.xml"), "wb") as fh:
            fh.write(_voc_xml(image_id, width, height, objects))
        ids.append(image_id)
        n_objects += len(objects)
    with open(os.path.join(voc_dir, "ImageSets", "Main", f"{split}.txt"), "w",
              encoding="utf-8") as fh:
        fh.write("\n".join(ids) + "\n")
    return n_objects


def _split_plan(num_train: int, num_test: int, num_target: int) -> Dict[str, Dict[str, int]]:
    plan = {SOURCE_DOMAIN: {"train": num_train, "test": num_test}}
    for domain in DIVERSE_WEATHER_DOMAINS:
        if domain != SOURCE_DOMAIN:
            plan[domain] = {"train": num_target}  # the release has no test list for these
    return plan


def generate_diverse_weather(
    root: str,
    seed: int = 0,
    num_train: int = 160,
    num_test: int = 40,
    num_target: int = 40,
    image_size: Tuple[int, int] = (384, 216),
    strength: Optional[Dict[str, float]] = None,
) -> dict:
    """Write a synthetic Diverse Weather tree under ``root``; returns a summary dict.

    ``root`` gets ``<domain>/VOC2007/{Annotations,ImageSets/Main,JPEGImages}``: train and
    test lists for daytime_clear, a train list only for the 4 target domains. Output is
    byte-identical for the same parameters; when the ``synthetic.json`` marker written last
    matches them, nothing is rewritten. ``image_size`` is (width, height); ``strength`` maps
    target domains to the strength of their style, over ``TARGET_STRENGTH`` (1 = full).
    """
    width, height = (int(v) for v in image_size)
    if width < _MAX_SIZE + 2 or height < _MAX_SIZE + 2:
        raise ValueError(f"image_size must be at least {_MAX_SIZE + 2} px per side, "
                         f"got {image_size}")
    params = {
        "generator": "diverse_weather",
        "version": _VERSION,
        "seed": int(seed),
        "num_train": int(num_train),
        "num_test": int(num_test),
        "num_target": int(num_target),
        "image_size": [width, height],
    }
    unknown = set(strength or {}) - set(TARGET_STRENGTH)
    if unknown:
        raise ValueError(f"strength: {sorted(unknown)} are not target domains "
                         f"({list(TARGET_STRENGTH)})")
    strength = {d: float(v) for d, v in {**TARGET_STRENGTH, **(strength or {})}.items()}
    params["strength"] = strength
    plan = _split_plan(params["num_train"], params["num_test"], params["num_target"])
    marker = os.path.join(root, MARKER)
    previous = None
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as fh:
            previous = json.load(fh)
    split_files = [
        os.path.join(root, domain, "VOC2007", "ImageSets", "Main", f"{split}.txt")
        for domain, splits in plan.items()
        for split in splits
    ]
    up_to_date = previous is not None and previous.get("params") == params
    if up_to_date and all(map(os.path.isfile, split_files)):
        return {**previous, "root": root, "generated": False, "seconds": 0.0}
    clear_for_generation(root, DIVERSE_WEATHER_DOMAINS, marker, previous)

    start = time.perf_counter()
    n_objects = 0
    for domain_idx, domain in enumerate(DIVERSE_WEATHER_DOMAINS):
        voc_dir = os.path.join(root, domain, "VOC2007")
        for split, count in plan[domain].items():
            n_objects += _write_split(voc_dir, domain_idx, split, count, params["seed"],
                                      (width, height), strength.get(domain, 1.0))
    summary = {
        "params": params,
        "splits": plan,
        "images": sum(n for splits in plan.values() for n in splits.values()),
        "objects": n_objects,
        "files": tree_files(root, DIVERSE_WEATHER_DOMAINS),
    }
    with open(marker, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")
    return {**summary, "root": root, "generated": True, "seconds": time.perf_counter() - start}
