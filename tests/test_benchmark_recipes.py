"""The real-benchmark commands of docs/datasets.md, each on a synthetic copy of its benchmark's
on-disk layout (written where the registration looks, under a temporary root): the command's
config builds (with a tiny CLIP, the real weights not being here) and every dataset it names
loads."""
import os
import re

import cv2
import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model

from domaingen.data.datasets import dg_split_names, register_all, register_all_classification
from domaingen.data.datasets.builtin import FOGGY_CITYSCAPES_SUFFIX
from domaingen.data.datasets.classification import (
    CLASSIFICATION_DATASETS,
    DOMAINBED_LAYOUTS,
    VISDA17_CLASSES,
    _list_files,
)
from domaingen.engine import load_config
from domaingen.methods.spg.pipeline import default_configs

REPO = os.path.join(os.path.dirname(__file__), "..")
PREFIX = "copy_"
CLASSES_ON_DISK = ("ant", "bee")  # datasets whose classes are read from the data
TINY = ["MODEL.CLIP.NAME", "domaingen-tiny-RN", "MODEL.CLIP.WEIGHTS", "", "MODEL.DEVICE", "cpu"]


def commands():
    """(tool, argument) of each command in the docs' table of real benchmarks."""
    with open(os.path.join(REPO, "docs", "datasets.md"), encoding="utf-8") as f:
        table = f.read().split("## The real benchmarks", 1)[1].split("\n## ", 1)[0]
    return (re.findall(r"tools/(train_net)\.py --config-file (\S+)", table)
            + re.findall(r"tools/(spg_pipeline)\.py --dataset (\w+)", table))


def image(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, np.full((40, 60, 3), 128, np.uint8))


def voc_copy(dirname, split, cls):
    ids = [f"{split}_{i}" for i in range(2)]
    for image_id in ids:
        image(os.path.join(dirname, "JPEGImages", f"{image_id}.jpg"))
        os.makedirs(os.path.join(dirname, "Annotations"), exist_ok=True)
        with open(os.path.join(dirname, "Annotations", f"{image_id}.xml"), "w") as f:
            f.write(f"<annotation><size><width>60</width><height>40</height><depth>3</depth>"
                    f"</size><object><name>{cls}</name><difficult>0</difficult><bndbox><xmin>5"
                    f"</xmin><ymin>5</ymin><xmax>30</xmax><ymax>30</ymax></bndbox></object>"
                    f"</annotation>")
    os.makedirs(os.path.join(dirname, "ImageSets", "Main"), exist_ok=True)
    with open(os.path.join(dirname, "ImageSets", "Main", f"{split}.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")


def cityscapes_copy(image_dir, gt_dir):
    stem = "aachen_000000_000019"
    os.makedirs(os.path.join(gt_dir, "aachen"), exist_ok=True)
    with open(os.path.join(gt_dir, "aachen", f"{stem}_gtFine_polygons.json"), "w") as f:
        f.write('{"imgHeight": 40, "imgWidth": 60, "objects": [{"label": "car", '
                '"polygon": [[5, 5], [30, 5], [30, 30]]}]}')
    for suffix in ("leftImg8bit.png", FOGGY_CITYSCAPES_SUFFIX):
        image(os.path.join(image_dir, "aachen", f"{stem}_{suffix}"))


def classification_copy(root, dataset):
    """Every domain of ``dataset``: 10 images per class in its folders or lists."""
    if dataset in DOMAINBED_LAYOUTS:
        folder, domains, fixed = DOMAINBED_LAYOUTS[dataset]
        for domain_folder in domains.values():
            for cls in fixed or CLASSES_ON_DISK:
                for i in range(10):
                    image(os.path.join(root, folder, domain_folder, cls, f"{i}.jpg"))
        return
    classes = VISDA17_CLASSES if dataset == "visda17" else CLASSES_ON_DISK
    for domain in CLASSIFICATION_DATASETS[dataset]:
        for list_file, base in _list_files(dataset, domain, root).values():
            lines = []
            for label, cls in enumerate(classes):
                for i in range(10):
                    relative = (f"{cls}/{i}.jpg" if dataset == "visda17"
                                else f"{domain}/{cls}/{i}.jpg")
                    image(os.path.join(base, relative))
                    lines.append(f"{relative} {label}")
            os.makedirs(os.path.dirname(list_file), exist_ok=True)
            with open(list_file, "w") as f:
                f.write("\n".join(lines) + "\n")


def write_copy(root, name):
    meta = MetadataCatalog.get(PREFIX + name)
    if meta.evaluator_type == "classification":
        classification_copy(root, meta.dataset)
    elif hasattr(meta, "dirname"):
        voc_copy(meta.dirname, meta.split, meta.thing_classes[0])
    else:
        cityscapes_copy(meta.image_dir, meta.gt_dir)


def configs_of(tool, argument):
    """(config file, dataset names) of a command."""
    if tool == "train_net":
        config = os.path.join(REPO, argument)
        cfg = load_config(config, TINY)
        keys = ("TRAIN", "VAL", "TEST", "TRAIN_UNLABELED")
        return [(config, {k: list(cfg.DATASETS[k]) for k in keys})]
    first = sorted(CLASSIFICATION_DATASETS[argument])[0]
    splits = dg_split_names(argument, first)
    return [(config, {"TRAIN": splits["train"], "VAL": splits["val"], "TEST": splits["test"]})
            for config in default_configs(argument, "ViT-B-16")]


def test_the_docs_name_a_command_per_benchmark():
    assert len(commands()) >= 8


@pytest.mark.parametrize("tool,argument", commands(), ids=lambda v: os.path.basename(str(v)))
def test_a_benchmark_command_runs_on_a_synthetic_copy(tool, argument, tmp_path, registered):
    registered += register_all(str(tmp_path), prefix=PREFIX)
    registered += register_all_classification(str(tmp_path), prefix=PREFIX)
    for config, datasets in configs_of(tool, argument):
        names = [n for values in datasets.values() for n in values]
        assert names
        for name in names:
            write_copy(str(tmp_path), name)
        opts = [*TINY, "DATASETS.DG_BENCHMARK", ""]
        for key, values in datasets.items():
            opts += [f"DATASETS.{key}", repr(tuple(PREFIX + n for n in values))]
        cfg = load_config(config, opts)
        build_model(cfg)
        assert all(DatasetCatalog.get(PREFIX + name) for name in names)
