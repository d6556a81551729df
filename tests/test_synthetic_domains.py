"""The synthetic classification domains: layout, determinism, idempotence, styles, registration
and command line."""
import os

import cv2
import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from domaingen.data.datasets import (
    SYNTHETIC_DOMAINS,
    SYNTHETIC_DOMAINS_CLASSES,
    register_all_classification,
)
from domaingen.miniature.synthetic.__main__ import main
from domaingen.miniature.synthetic.domains import generate_domains


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    return root, generate_domains(str(root), seed=5, num_per_class=3, image_size=40)


def _files(root):
    out = {}
    for d, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(d, name), "rb") as f:
                out[os.path.relpath(os.path.join(d, name), root)] = f.read()
    return out


def test_synthetic_domains_layout_determinism_and_idempotence(synthetic_root, tmp_path):
    root, summary = synthetic_root
    out = root / "synthetic_domains"
    assert summary["generated"] and summary["images"] == 5 * 5 * 3 and summary["root"] == str(out)
    assert sorted(os.listdir(out)) == sorted(SYNTHETIC_DOMAINS + ("synthetic.json",))
    for domain in SYNTHETIC_DOMAINS:
        assert sorted(os.listdir(out / domain)) == list(SYNTHETIC_DOMAINS_CLASSES)
        for cls in SYNTHETIC_DOMAINS_CLASSES:
            assert sorted(os.listdir(out / domain / cls)) == ["0000.jpg", "0001.jpg", "0002.jpg"]
    img = cv2.imread(str(out / "cartoon" / "star" / "0001.jpg"))
    assert img.shape == (40, 40, 3)

    before = {p: os.stat(out / p).st_mtime_ns for p in _files(out)}
    assert generate_domains(str(root), seed=5, num_per_class=3, image_size=40)["generated"] is False
    assert {p: os.stat(out / p).st_mtime_ns for p in _files(out)} == before

    again = generate_domains(str(tmp_path / "again"), seed=5, num_per_class=3, image_size=40)
    assert _files(again["root"]) == _files(out)
    other = _files(generate_domains(str(tmp_path / "other"), seed=6, num_per_class=3,
                                    image_size=40)["root"])
    first = _files(out)
    assert all(first[p] != other[p] for p in first if p.endswith(".jpg"))
    smaller = generate_domains(str(tmp_path / "other"), seed=6, num_per_class=1, image_size=40)
    assert smaller["generated"] and len(_files(smaller["root"])) == 5 * 5 + 1


def _stats(out, domain):
    imgs = [cv2.imread(str(out / domain / c / f"{i:04d}.jpg"))
            for c in SYNTHETIC_DOMAINS_CLASSES for i in range(3)]
    hsv = np.stack([cv2.cvtColor(im, cv2.COLOR_BGR2HSV) for im in imgs]).astype(np.float32)
    texture = np.mean([cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var()
                       for im in imgs])
    return hsv[..., 1].mean(), hsv[..., 2].mean(), texture


def test_synthetic_domains_styles_differ(synthetic_root):
    out = synthetic_root[0] / "synthetic_domains"
    stats = {d: _stats(out, d) for d in SYNTHETIC_DOMAINS}
    assert stats["sketch"][0] < 30 and stats["sketch"][1] > 200  # grey pencil on white paper
    # saturated flat colours
    assert stats["cartoon"][0] > max(stats["photo"][0], stats["sketch"][0])
    assert stats["painting"][2] > 2 * stats["photo"][2]  # brush-stroke texture


def test_synthetic_domains_registered_and_cli(synthetic_root, registered, tmp_path, capsys):
    root, _ = synthetic_root
    registered.extend(register_all_classification(str(root), prefix="t_syn_"))
    train = DatasetCatalog.get("t_syn_synthetic_domains_sketch_train")
    assert (len(train) == 5 * 2
            and len(DatasetCatalog.get("t_syn_synthetic_domains_sketch_val")) == 5)
    assert {d["domain"] for d in train} == {"sketch"}
    assert (MetadataCatalog.get("t_syn_synthetic_domains_painting_test").thing_classes
            == list(SYNTHETIC_DOMAINS_CLASSES))

    main(["--kind", "domains", "--root", str(tmp_path), "--num-per-class", "1", "--side", "32",
          "--seed", "2"])
    assert "domains: 25 images (5 domains x 5 classes x 1)" in capsys.readouterr().out
    main(["--kind", "domains", "--root", str(tmp_path), "--num-per-class", "1", "--side", "32",
          "--seed", "2"])
    assert "already up to date" in capsys.readouterr().out
    assert cv2.imread(str(tmp_path / "synthetic_domains" / "ring" / "0000.jpg")) is None
    assert cv2.imread(
        str(tmp_path / "synthetic_domains" / "sketch" / "ring" / "0000.jpg")).shape == (32, 32, 3)
