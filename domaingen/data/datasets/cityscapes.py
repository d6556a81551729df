"""Cityscapes and Foggy Cityscapes fine annotations loaded as box detection datasets.

Dataset folders are only ever read.
"""
import json
import os
from typing import List, Optional, Tuple

from detectron2.structures import BoxMode

from .errors import DatasetAnnotationError, DatasetLayoutError

__all__ = ["CITYSCAPES_CLASSES", "load_cityscapes_detection"]

CITYSCAPES_CLASSES = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")

_GT_SUFFIX = "_gtFine_polygons.json"


def _polygon_files(gt_dir: str) -> List[str]:
    """All ``<city>/*_gtFine_polygons.json`` files under ``gt_dir``, sorted."""
    files = []
    for city in sorted(os.listdir(gt_dir)):
        city_dir = os.path.join(gt_dir, city)
        if os.path.isdir(city_dir):
            names = sorted(f for f in os.listdir(city_dir) if f.endswith(_GT_SUFFIX))
            files.extend(os.path.join(city_dir, f) for f in names)
    if not files:
        raise DatasetLayoutError(f"No <city>/*{_GT_SUFFIX} files found under {gt_dir}")
    return files


def _read_json(path: str) -> Tuple[dict, int, int]:
    """Parsed polygon file with its image height and width."""
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is not content
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetAnnotationError(f"Cannot parse annotation file {path}: {e}") from e
    try:
        return data, int(data["imgHeight"]), int(data["imgWidth"])
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetAnnotationError(f"Missing or invalid imgHeight/imgWidth in {path}: {e!r}") from e


def _object_box(obj: dict, height: int, width: int, path: str) -> Optional[List[float]]:
    """Clipped XYXY box around an object's polygon, or None if under 1 px wide/high."""
    try:
        xs = [float(p[0]) for p in obj["polygon"]]
        ys = [float(p[1]) for p in obj["polygon"]]
    except (KeyError, TypeError, IndexError, ValueError) as e:
        raise DatasetAnnotationError(f"Invalid polygon for {obj.get('label')!r} in {path}: {e}") from e
    if not xs:
        return None
    x1, x2 = max(0.0, min(xs)), min(float(width), max(xs))
    y1, y2 = max(0.0, min(ys)), min(float(height), max(ys))
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return [x1, y1, x2, y2]


def load_cityscapes_detection(
    image_dir: str, gt_dir: str, image_suffix: str = "leftImg8bit.png"
) -> List[dict]:
    """Load one Cityscapes split as Detectron2 standard dicts with 8 box classes.

    Args:
        image_dir: e.g. ``cityscapes/leftImg8bit/train`` (``<city>/`` subfolders inside).
        gt_dir: e.g. ``cityscapes/gtFine/train``.
        image_suffix: image name ending after ``<city>_<seq>_<frame>_``; Foggy Cityscapes
            uses ``leftImg8bit_foggy_beta_0.02.png``.
    """
    for d in (image_dir, gt_dir):
        if not os.path.isdir(d):
            raise DatasetLayoutError(f"Dataset folder not found: {d}")
    class_to_id = {name: i for i, name in enumerate(CITYSCAPES_CLASSES)}
    dicts = []
    for path in _polygon_files(gt_dir):
        city = os.path.basename(os.path.dirname(path))
        stem = os.path.basename(path)[: -len(_GT_SUFFIX)]
        file_name = os.path.join(image_dir, city, f"{stem}_{image_suffix}")
        if not os.path.isfile(file_name):
            raise DatasetLayoutError(f"Image not found: {file_name} (annotations: {path})")
        data, height, width = _read_json(path)
        annotations = []
        for obj in data.get("objects") or []:
            label = obj.get("label")
            if obj.get("deleted") or label not in class_to_id:
                continue
            box = _object_box(obj, height, width, path)
            if box is not None:
                annotations.append(
                    {
                        "bbox": box,
                        "bbox_mode": BoxMode.XYXY_ABS,
                        "category_id": class_to_id[label],
                        "difficult": 0,
                    }
                )
        dicts.append(
            {
                "file_name": file_name,
                "image_id": stem,
                "height": height,
                "width": width,
                "annotations": annotations,
            }
        )
    return dicts
