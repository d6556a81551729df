"""The evaluation data of the miniature world v2, drawn from one world seed.

- Detection: one synthetic Diverse Weather tree per target-style strength (0.25, 0.5, 0.75, 1):
  the same scenes at every strength (the style blend reuses the same draws), day-clear train and
  test splits, each target domain's images as its test set. An oracle tree (next seed) holds
  labelled target-domain training images at strength 0.75 for the oracle detector.
- Classification: the synthetic domains (5 styles, 5 shapes, colours independent of the class)
  in ``<datasets root>/synthetic_domains``.

The detection splits are registered as ``ev_dw_<tree>_<domain>_<split>`` (tree ``s025`` ...
``s100``, ``oracle``).
"""
import os
from typing import Dict, List

from detectron2.data import DatasetCatalog, MetadataCatalog

from domaingen.data.datasets.builtin import DIVERSE_WEATHER_CLASSES, DIVERSE_WEATHER_DOMAINS
from domaingen.data.datasets.voc_style import register_voc_style
from domaingen.miniature.synthetic import generate_diverse_weather
from domaingen.miniature.synthetic.domains import generate_domains

__all__ = ["STRENGTHS", "TARGETS", "DETECTION", "CLASSIFICATION", "prepare_world",
           "register_world", "world_folders", "dataset_name", "detection_test_sets"]

STRENGTHS = (0.25, 0.5, 0.75, 1.0)
SOURCE = "daytime_clear"
TARGETS = tuple(d for d in DIVERSE_WEATHER_DOMAINS if d != SOURCE)
DETECTION = dict(num_train=160, num_test=100, num_target=60, image_size=(384, 216))
ORACLE = dict(num_train=160, num_test=1, num_target=40, image_size=(384, 216), strength=0.75)
CLASSIFICATION = dict(num_per_class=40, image_size=64)
FOLDER = "miniature_world_v2"


def _tree(strength: float) -> str:
    return f"s{round(strength * 100):03d}"


def dataset_name(tree: str, domain: str, split: str) -> str:
    return f"ev_dw_{tree}_{domain}_{split}"


def world_folders(root: str, world_seed: int) -> Dict[str, str]:
    """``{tree: folder}`` of the detection trees of ``world_seed``."""
    base = os.path.join(root, FOLDER, f"world{world_seed}")
    return {t: os.path.join(base, t) for t in [_tree(s) for s in STRENGTHS] + ["oracle"]}


def prepare_world(root: str, world_seed: int) -> List[str]:
    """Write (or find) every tree of ``world_seed`` under the datasets ``root``; register them;
    returns the data folders (for their sha256)."""
    folders = world_folders(root, world_seed)
    for strength in STRENGTHS:
        generate_diverse_weather(folders[_tree(strength)], seed=world_seed, **DETECTION,
                                 strength={d: strength for d in TARGETS})
    oracle = dict(ORACLE)
    strength = oracle.pop("strength")
    generate_diverse_weather(folders["oracle"], seed=world_seed + 1, **oracle,
                             strength={d: strength for d in TARGETS})
    generate_domains(root, seed=world_seed, **CLASSIFICATION)
    register_world(root, world_seed)
    return list(folders.values()) + [os.path.join(root, "synthetic_domains")]


def register_world(root: str, world_seed: int) -> None:
    """Register the detection splits of ``world_seed`` (again in a new process; idempotent)."""
    existing = set(DatasetCatalog.list())
    for tree, folder in world_folders(root, world_seed).items():
        for domain in DIVERSE_WEATHER_DOMAINS:
            splits = ("train", "test") if domain == SOURCE else ("train",)
            for split in splits:
                name = dataset_name(tree, domain, split)
                if name in existing:
                    DatasetCatalog.remove(name)
                    MetadataCatalog.remove(name)
                register_voc_style(name, os.path.join(folder, domain, "VOC2007"), split,
                                   DIVERSE_WEATHER_CLASSES, year=2007, domain=domain,
                                   unknown_classes="error", box_convention="shift_all")


def detection_test_sets() -> Dict[str, tuple]:
    """``{dataset name: (domain, strength)}`` of every set the detectors are tested on: the
    day-clear test split, and each target domain at each strength."""
    sets = {dataset_name(_tree(1.0), SOURCE, "test"): (SOURCE, 0.0)}
    for strength in STRENGTHS:
        for domain in TARGETS:
            sets[dataset_name(_tree(strength), domain, "train")] = (domain, strength)
    return sets
