"""Loader and registration for detection datasets stored in the Pascal VOC layout.

Used for Diverse Weather, its synthetic twin, Pascal VOC and Comic/Watercolor.
Dataset folders are only ever read.
"""
import logging
import os
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Dict, List, Optional, Sequence

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from .errors import DatasetAnnotationError, DatasetLayoutError

__all__ = ["load_voc_style_instances", "register_voc_style", "read_split_ids"]

logger = logging.getLogger(__name__)

_UNKNOWN_CLASS_MODES = ("error", "skip")
# How 1-based inclusive VOC boxes become 0-based XYXY_ABS boxes:
# "shift_all": [max(0, xmin-1), max(0, ymin-1), xmax-1, ymax-1] (the CLIP-the-Gap authors'
#   Diverse Weather and Comic/Watercolor loaders);
# "detectron2": [xmin-1, ymin-1, xmax, ymax] (Detectron2's Pascal VOC loader, which the authors
#   use for Pascal VOC itself).
BOX_CONVENTIONS = ("shift_all", "detectron2")


def read_split_ids(dirname: str, split: str) -> List[str]:
    """Return the image ids listed in ``<dirname>/ImageSets/Main/<split>.txt``."""
    if not os.path.isdir(dirname):
        raise DatasetLayoutError(f"Dataset folder not found: {dirname}")
    split_file = os.path.join(dirname, "ImageSets", "Main", f"{split}.txt")
    if not os.path.isfile(split_file):
        raise DatasetLayoutError(f"Split file not found: {split_file}")
    first_line: Dict[str, int] = {}
    with open(split_file, encoding="utf-8-sig") as f:  # BOM and CRLF as Windows editors write
        for n, line in enumerate(f, 1):
            image_id = line.strip()
            if image_id and first_line.setdefault(image_id, n) != n:
                # Loaded twice, an image would count twice in training and in AP.
                raise DatasetAnnotationError(
                    f"Image id {image_id!r} is listed twice in {split_file}: lines "
                    f"{first_line[image_id]} and {n}; every image may appear once per split")
    if not first_line:
        raise DatasetLayoutError(f"Split file lists no images: {split_file}")
    return list(first_line)


def _parse_xml(xml_path: str) -> ET.Element:
    if not os.path.isfile(xml_path):
        raise DatasetLayoutError(f"Annotation file not found: {xml_path}")
    try:
        return ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        raise DatasetAnnotationError(f"Cannot parse annotation file {xml_path}: {e}") from e


def _number(node: ET.Element, tag: str, xml_path: str) -> float:
    text = node.findtext(tag)
    try:
        return float(text)
    except (TypeError, ValueError):
        raise DatasetAnnotationError(
            f"Missing or non-numeric <{tag}> in {xml_path}: {text!r}"
        ) from None


def _image_path(dirname: str, image_id: str) -> str:
    jpg = os.path.join(dirname, "JPEGImages", f"{image_id}.jpg")
    if os.path.isfile(jpg):
        return jpg
    png = os.path.join(dirname, "JPEGImages", f"{image_id}.png")
    if os.path.isfile(png):
        return png
    raise DatasetLayoutError(f"Image not found: {jpg} (nor {png})")


def _parse_object(obj, xml_path: str, class_to_id: Dict[str, int], width: float,
                  height: float, box_convention: str = "shift_all") -> Optional[dict]:
    """Return the annotation dict of one ``<object>``, or None for an unknown class.

    Class names are matched without case and surrounding spaces. A box reaching past the image
    edge is kept as annotated (Detectron2 clips it for training, VOC evaluation uses it as is);
    one of zero area or wholly outside the image is an error."""
    name = (obj.findtext("name") or "").strip().lower()
    if name not in class_to_id:
        return None
    box_node = obj.find("bndbox")
    if box_node is None:
        raise DatasetAnnotationError(f"Object {name!r} without <bndbox> in {xml_path}")
    xmin, ymin, xmax, ymax = (_number(box_node, t, xml_path) for t in ("xmin", "ymin", "xmax", "ymax"))
    if box_convention == "shift_all":
        box = [max(0.0, xmin - 1), max(0.0, ymin - 1), xmax - 1, ymax - 1]
    else:
        box = [xmin - 1, ymin - 1, xmax, ymax]
    if box[2] <= box[0] or box[3] <= box[1]:
        raise DatasetAnnotationError(
            f"Box of zero or negative area for {name!r} in {xml_path}: "
            f"xmin={xmin:g} ymin={ymin:g} xmax={xmax:g} ymax={ymax:g}"
        )
    if box[0] >= width or box[1] >= height:
        raise DatasetAnnotationError(
            f"Box for {name!r} lies outside the {width:g}x{height:g} image in {xml_path}: "
            f"xmin={xmin:g} ymin={ymin:g} xmax={xmax:g} ymax={ymax:g}; fix the box or the <size>"
        )
    difficult = (obj.findtext("difficult") or "0").strip() or "0"
    if difficult not in ("0", "1"):
        raise DatasetAnnotationError(
            f"<difficult> of {name!r} in {xml_path} is {difficult!r}; it must be 0 or 1")
    return {
        "bbox": box,
        "bbox_mode": BoxMode.XYXY_ABS,
        "category_id": class_to_id[name],
        "difficult": int(difficult),
    }


def load_voc_style_instances(
    dirname: str, split: str, class_names: Sequence[str], unknown_classes: str = "error",
    box_convention: str = "shift_all",
) -> List[dict]:
    """Load a VOC-layout split as Detectron2 standard dataset dicts.

    Args:
        dirname: folder holding ``Annotations/``, ``ImageSets/Main/`` and ``JPEGImages/``.
        split: split file name without ``.txt``.
        class_names: classes in category-id order (matched without case).
        unknown_classes: ``"error"`` to reject objects of other classes, ``"skip"`` to drop them.
        box_convention: one of ``BOX_CONVENTIONS``.
    """
    if unknown_classes not in _UNKNOWN_CLASS_MODES:
        raise ValueError(f"unknown_classes must be one of {_UNKNOWN_CLASS_MODES}, got {unknown_classes!r}")
    if box_convention not in BOX_CONVENTIONS:
        raise ValueError(f"box_convention must be one of {BOX_CONVENTIONS}, got {box_convention!r}")
    class_to_id = {name.lower(): i for i, name in enumerate(class_names)}
    dicts, skipped = [], Counter()
    for image_id in read_split_ids(dirname, split):
        xml_path = os.path.join(dirname, "Annotations", f"{image_id}.xml")
        root = _parse_xml(xml_path)
        size = root.find("size")
        if size is None:
            raise DatasetAnnotationError(f"Missing <size> in {xml_path}")
        width, height = _number(size, "width", xml_path), _number(size, "height", xml_path)
        if width <= 0 or height <= 0:
            raise DatasetAnnotationError(
                f"<size> of {xml_path} is {width:g}x{height:g}; width and height must be positive")
        annotations = []
        for obj in root.findall("object"):
            ann = _parse_object(obj, xml_path, class_to_id, width, height, box_convention)
            if ann is not None:
                annotations.append(ann)
            elif unknown_classes == "error":
                raise DatasetAnnotationError(
                    f"Unknown class {(obj.findtext('name') or '').strip()!r} in {xml_path}; "
                    f"known classes: {', '.join(class_names)}"
                )
            else:
                skipped[(obj.findtext("name") or "").strip()] += 1
        dicts.append(
            {
                "file_name": _image_path(dirname, image_id),
                "image_id": image_id,
                "height": int(height),
                "width": int(width),
                "annotations": annotations,
            }
        )
    if skipped:
        logger.info(f"{dirname} ({split}): skipped {sum(skipped.values())} objects of classes "
                    f"outside {list(class_names)}: {dict(skipped.most_common())}")
    return dicts


def register_voc_style(
    name: str,
    dirname: str,
    split: str,
    class_names: Sequence[str],
    *,
    year: int = 2007,
    domain: Optional[str] = None,
    unknown_classes: str = "error",
    box_convention: str = "shift_all",
) -> None:
    """Register a VOC-layout split under ``name``; files are only checked when loaded."""
    class_names = tuple(class_names)
    DatasetCatalog.register(
        name, lambda: load_voc_style_instances(dirname, split, class_names, unknown_classes,
                                               box_convention)
    )
    MetadataCatalog.get(name).set(
        thing_classes=list(class_names),
        dirname=dirname,
        split=split,
        year=year,
        domain=domain or name,
        evaluator_type="domain_ap",
        use_07_metric=(year == 2007),
        box_convention=box_convention,
    )
