"""The own-data recipe of docs/datasets.md, run on a synthetic copy of its folders: its
registration code runs, and each of its commands' configs builds (with a tiny CLIP, the real
weights not being here) and loads every dataset it names."""
import os
import re
import shlex

import cv2
import numpy as np
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model

from domaingen.engine import load_config

REPO = os.path.join(os.path.dirname(__file__), "..")


def recipe():
    with open(os.path.join(REPO, "docs", "datasets.md"), encoding="utf-8") as f:
        section = f.read().split("## Your own data", 1)[1]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    bash = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    return python, [shlex.split(line) for line in bash.strip().splitlines()]


def image(path, rng):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))


def voc_copy(root, splits, rng):
    """A VOC-layout folder: two images per split, each holding one car and one person."""
    for split in splits:
        ids = [f"{split}_{i}" for i in range(2)]
        for image_id in ids:
            image(root / "JPEGImages" / f"{image_id}.jpg", rng)
            objects = "".join(
                f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x}</xmin>"
                f"<ymin>5</ymin><xmax>{x + 20}</xmax><ymax>40</ymax></bndbox></object>"
                for name, x in (("car", 5), ("person", 35)))
            xml = root / "Annotations" / f"{image_id}.xml"
            xml.parent.mkdir(parents=True, exist_ok=True)
            xml.write_text(f"<annotation><size><width>64</width><height>48</height>"
                           f"<depth>3</depth></size>{objects}</annotation>")
        split_file = root / "ImageSets" / "Main" / f"{split}.txt"
        split_file.parent.mkdir(parents=True, exist_ok=True)
        split_file.write_text("\n".join(ids) + "\n")


def test_the_own_data_recipe_runs_on_a_synthetic_copy(tmp_path):
    rng = np.random.default_rng(0)
    voc_copy(tmp_path / "day", ("train", "test"), rng)
    voc_copy(tmp_path / "night", ("test",), rng)
    for domain in ("photo", "sketch"):
        for cls in ("car", "person"):
            for i in range(2):
                image(tmp_path / domain / cls / f"{i}.jpg", rng)
    python, commands = recipe()
    exec(python.replace("/data/mine", str(tmp_path)), {"__name__": "docs_recipe"})
    assert len(commands) == 2
    for argv in commands:
        position = argv.index("--config-file")
        opts = argv[position + 2:]
        weights = opts.index("MODEL.CLIP.WEIGHTS")
        del opts[weights:weights + 2]
        cfg = load_config(os.path.join(REPO, argv[position + 1]), [
            *opts, "MODEL.CLIP.NAME", "domaingen-tiny-RN", "MODEL.CLIP.WEIGHTS", "",
            "MODEL.DEVICE", "cpu"])
        build_model(cfg)
        names = [*cfg.DATASETS.TRAIN, *cfg.DATASETS.VAL, *cfg.DATASETS.TEST]
        assert names and all(len(DatasetCatalog.get(name)) == 2 * (2 if "photo" in name or
                                                                    "sketch" in name else 1)
                             for name in names)
