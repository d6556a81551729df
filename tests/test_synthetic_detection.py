"""Tests of the synthetic Diverse Weather generator and its command line."""
import os

import cv2
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from domaingen.data.datasets import (
    DIVERSE_WEATHER_CLASSES,
    DIVERSE_WEATHER_DOMAINS,
    load_voc_style_instances,
    register_all,
)
from domaingen.miniature.synthetic import generate_diverse_weather
from domaingen.miniature.synthetic.__main__ import main
from domaingen.miniature.synthetic.weather_styles import TARGET_STRENGTH

SMALL = dict(num_train=14, num_test=4, num_target=3)


def _files(root):
    out = {}
    for d, _, names in os.walk(root):
        for name in names:
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def _mtimes(root):
    return {p: os.stat(os.path.join(root, p)).st_mtime_ns for p in _files(root)}


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    """Generated at ``<datasets root>/synthetic_diverse_weather`` as the registered names expect."""
    root = str(tmp_path_factory.mktemp("datasets") / "synthetic_diverse_weather")
    return root, generate_diverse_weather(root, seed=3, **SMALL)


def test_same_seed_gives_identical_files(small_tree, tmp_path):
    root, summary = small_tree
    assert summary["generated"] and summary["images"] == 14 + 4 + 4 * 3
    again = generate_diverse_weather(str(tmp_path / "again"), seed=3, **SMALL)
    assert again["objects"] == summary["objects"]
    first, second = _files(root), _files(str(tmp_path / "again"))
    assert first == second
    other = _files(generate_diverse_weather(str(tmp_path / "other"), seed=4, **SMALL)["root"])
    jpgs = [p for p in first if p.endswith(".jpg")]
    assert all(first[p] != other[p] for p in jpgs)


def test_layout_is_read_by_voc_loader(small_tree):
    root, _ = small_tree
    for domain in DIVERSE_WEATHER_DOMAINS:
        main_dir = os.path.join(root, domain, "VOC2007", "ImageSets", "Main")
        expected = ["test.txt", "train.txt"] if domain == "daytime_clear" else ["train.txt"]
        assert sorted(os.listdir(main_dir)) == expected
    for domain, split, count in [("daytime_clear", "train", 14), ("daytime_clear", "test", 4)] + [
        (d, "train", 3) for d in DIVERSE_WEATHER_DOMAINS[1:]
    ]:
        dicts = load_voc_style_instances(os.path.join(root, domain, "VOC2007"), split,
                                         DIVERSE_WEATHER_CLASSES)
        assert len(dicts) == count
        for d in dicts:
            assert d["file_name"].endswith(".jpg")
            img = cv2.imread(d["file_name"])
            assert img.shape == (d["height"], d["width"], 3) == (216, 384, 3)
            assert 1 <= len(d["annotations"]) <= 4
            for a in d["annotations"]:
                x1, y1, x2, y2 = a["bbox"]
                assert 0 <= x1 < x2 <= d["width"] and 0 <= y1 < y2 <= d["height"]
                assert 20 <= max(x2 - x1, y2 - y1) <= 121
                assert a["difficult"] == 0


def test_every_class_in_source_train(small_tree):
    root, _ = small_tree
    dicts = load_voc_style_instances(os.path.join(root, "daytime_clear", "VOC2007"), "train",
                                     DIVERSE_WEATHER_CLASSES)
    seen = {a["category_id"] for d in dicts for a in d["annotations"]}
    assert seen == set(range(len(DIVERSE_WEATHER_CLASSES)))


def _brightness(root):
    brightness = {}
    for domain in DIVERSE_WEATHER_DOMAINS:
        jpgs = os.path.join(root, domain, "VOC2007", "JPEGImages")
        brightness[domain] = sum(cv2.imread(os.path.join(jpgs, f)).mean()
                                 for f in sorted(os.listdir(jpgs))[:3]) / 3
    return brightness


def test_domain_styles_differ_and_strength_blends_them_with_the_day_style(small_tree, tmp_path):
    full = generate_diverse_weather(str(tmp_path / "full"), seed=3, **SMALL,
                                    strength={d: 1.0 for d in TARGET_STRENGTH})
    assert full["params"]["strength"] == {d: 1.0 for d in TARGET_STRENGTH}
    brightness = _brightness(str(tmp_path / "full"))
    assert brightness["night_sunny"] < brightness["daytime_clear"] / 2
    assert brightness["night_rainy"] < brightness["daytime_clear"] / 2
    assert brightness["daytime_foggy"] > brightness["dusk_rainy"]
    # The default (calibrated) tree: night darker than day, less so than at full strength.
    root, summary = small_tree
    assert summary["params"]["strength"] == TARGET_STRENGTH
    calibrated = _brightness(root)
    for night in ("night_sunny", "night_rainy"):
        assert brightness[night] < calibrated[night] < calibrated["daytime_clear"]
    with pytest.raises(ValueError, match=r"\['daytime_clear'\] are not target domains"):
        generate_diverse_weather(str(tmp_path / "bad"), **SMALL, strength={"daytime_clear": 0.5})


def test_idempotent_and_regenerates_on_new_params(tmp_path):
    root = str(tmp_path / "dw")
    generate_diverse_weather(root, seed=0, num_train=7, num_test=2, num_target=2)
    before = _mtimes(root)
    assert not generate_diverse_weather(root, seed=0, num_train=7, num_test=2,
                                        num_target=2)["generated"]
    assert _mtimes(root) == before

    summary = generate_diverse_weather(root, seed=0, num_train=8, num_test=1, num_target=1)
    assert summary["generated"] and summary["images"] == 8 + 1 + 4
    n_jpgs = sum(len(os.listdir(os.path.join(root, d, "VOC2007", "JPEGImages")))
                 for d in DIVERSE_WEATHER_DOMAINS)
    assert n_jpgs == 13  # stale files of the previous parameters are gone


def test_registered_synthetic_names_load(small_tree):
    root, _ = small_tree
    names = register_all(os.path.dirname(root), prefix="t_syn_")
    try:
        assert len(DatasetCatalog.get("t_syn_synthetic_dw_night_sunny_train")) == 3
        assert len(DatasetCatalog.get("t_syn_synthetic_dw_daytime_clear_test")) == 4
        assert MetadataCatalog.get("t_syn_synthetic_dw_night_sunny_train").domain == "night_sunny"
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_cli_prints_summary(tmp_path, capsys):
    root = str(tmp_path / "cli")
    main(["--root", root, "--seed", "1", "--num-train", "7", "--num-test", "1",
          "--num-target", "1"])
    out = capsys.readouterr().out.strip()
    assert (out.startswith("diverse_weather: 12 images") and "daytime_clear/train=7" in out
            and root in out)
    assert os.path.isfile(os.path.join(root, "synthetic.json"))
    main(["--root", root, "--seed", "1", "--num-train", "7", "--num-test", "1",
          "--num-target", "1"])
    assert "already up to date" in capsys.readouterr().out
