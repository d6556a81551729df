"""Registration of the built-in domain generalization detection datasets.

Paths are relative to ``$DETECTRON2_DATASETS`` (default ``datasets``); see
``datasets/README.md`` for the layouts. Nothing is read at registration time.
"""
import os
from typing import List, Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

from .cityscapes import CITYSCAPES_CLASSES, load_cityscapes_detection
from .voc_style import register_voc_style

__all__ = [
    "DIVERSE_WEATHER_CLASSES",
    "DIVERSE_WEATHER_DOMAINS",
    "COMIC_WATERCOLOR_CLASSES",
    "CITYSCAPES_CLASSES",
    "FOGGY_CITYSCAPES_SUFFIX",
    "default_root",
    "register_all",
]

DIVERSE_WEATHER_CLASSES = ("bus", "bike", "car", "motor", "person", "rider", "truck")
DIVERSE_WEATHER_DOMAINS = ("daytime_clear", "night_sunny", "dusk_rainy", "night_rainy", "daytime_foggy")
COMIC_WATERCOLOR_CLASSES = ("bicycle", "bird", "car", "cat", "dog", "person")
FOGGY_CITYSCAPES_SUFFIX = "leftImg8bit_foggy_beta_0.02.png"


def default_root() -> str:
    """Datasets root from ``$DETECTRON2_DATASETS``, defaulting to ``datasets``."""
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def _register_cityscapes(name: str, image_dir: str, gt_dir: str, image_suffix: str, domain: str) -> None:
    DatasetCatalog.register(name, lambda: load_cityscapes_detection(image_dir, gt_dir, image_suffix))
    MetadataCatalog.get(name).set(
        thing_classes=list(CITYSCAPES_CLASSES),
        image_dir=image_dir,
        gt_dir=gt_dir,
        domain=domain,
        evaluator_type="domain_ap",
        use_07_metric=False,
    )


def _voc_style_specs(root: str) -> List[tuple]:
    """(name, dirname, split, classes, year, domain, unknown_classes, box_convention) of every
    VOC-layout split. Like the CLIP-the-Gap authors' loaders, Pascal VOC, Diverse Weather and
    Comic/Watercolor skip objects of other classes; Pascal VOC keeps Detectron2's box
    convention, the others shift all four coordinates (see voc_style.BOX_CONVENTIONS)."""
    specs = []
    for domain in DIVERSE_WEATHER_DOMAINS:
        for split in ("train", "test"):
            dirname = os.path.join(root, "diverse_weather", domain, "VOC2007")
            specs.append((f"diverse_weather_{domain}_{split}", dirname, split,
                          DIVERSE_WEATHER_CLASSES, 2007, domain, "skip", "shift_all"))
            # The synthetic twin has no other classes: an unknown one is a generator bug.
            dirname = os.path.join(root, "synthetic_diverse_weather", domain, "VOC2007")
            specs.append((f"synthetic_dw_{domain}_{split}", dirname, split,
                          DIVERSE_WEATHER_CLASSES, 2007, domain, "error", "shift_all"))
    for name, year, split in (
        ("voc_2007_trainval_cw6", 2007, "trainval"),
        ("voc_2012_trainval_cw6", 2012, "trainval"),
        ("voc_2012_train_cw6", 2012, "train"),
        ("voc_2012_val_cw6", 2012, "val"),
        ("voc_2007_test_cw6", 2007, "test"),
    ):
        dirname = os.path.join(root, f"VOC{year}")
        specs.append((name, dirname, split, COMIC_WATERCOLOR_CLASSES, year, "voc", "skip",
                      "detectron2"))
    for domain in ("comic", "watercolor"):
        dirname = os.path.join(root, domain)
        for split in ("train", "test"):
            specs.append((f"{domain}_{split}", dirname, split, COMIC_WATERCOLOR_CLASSES, 2007,
                          domain, "skip", "shift_all"))
    return specs


def _cityscapes_specs(root: str) -> List[tuple]:
    """(name, image_dir, gt_dir, image_suffix, domain) of every Cityscapes split."""
    base = os.path.join(root, "cityscapes")
    specs = []
    for split in ("train", "val"):
        gt_dir = os.path.join(base, "gtFine", split)
        clear_dir = os.path.join(base, "leftImg8bit", split)
        foggy_dir = os.path.join(base, "leftImg8bit_foggy", split)
        specs.append((f"cityscapes_det_{split}", clear_dir, gt_dir, "leftImg8bit.png", "cityscapes"))
        specs.append(
            (f"foggy_cityscapes_det_{split}", foggy_dir, gt_dir, FOGGY_CITYSCAPES_SUFFIX, "foggy_cityscapes")
        )
    return specs


def register_all(root: Optional[str] = None, prefix: str = "") -> List[str]:
    """Register every built-in dataset as ``<prefix><name>``; returns the names newly registered.

    Names already in the ``DatasetCatalog`` are left untouched, so calling this twice is harmless.
    """
    root = default_root() if root is None else root
    existing = set(DatasetCatalog.list())
    registered = []
    for name, dirname, split, classes, year, domain, unknown, boxes in _voc_style_specs(root):
        if prefix + name not in existing:
            register_voc_style(prefix + name, dirname, split, classes, year=year, domain=domain,
                               unknown_classes=unknown, box_convention=boxes)
            registered.append(prefix + name)
    for name, image_dir, gt_dir, suffix, domain in _cityscapes_specs(root):
        if prefix + name not in existing:
            _register_cityscapes(prefix + name, image_dir, gt_dir, suffix, domain)
            registered.append(prefix + name)
    return registered
