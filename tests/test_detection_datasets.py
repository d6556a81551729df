"""Tests of the VOC-style and Cityscapes detection loaders and built-in registration."""
import json
import os

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from domaingen.data.datasets import (
    CITYSCAPES_CLASSES,
    COMIC_WATERCOLOR_CLASSES,
    DIVERSE_WEATHER_CLASSES,
    DIVERSE_WEATHER_DOMAINS,
    DatasetAnnotationError,
    DatasetLayoutError,
    default_root,
    load_cityscapes_detection,
    load_voc_style_instances,
    register_all,
)

CLASSES = ("car", "person", "bus")


def _xml(width, height, objects):
    objs = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>"
        f"<xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax>"
        f"</bndbox></object>"
        for name, box, difficult in objects
    )
    return (f"<annotation><size><width>{width}</width><height>{height}</height>"
            f"<depth>3</depth></size>{objs}</annotation>")


def _voc_tree(root, annotations, split="train", split_text=None, image_ext=None):
    """Write a VOC tree; ``annotations`` maps image id -> XML text."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for image_id, xml in annotations.items():
        (root / "Annotations" / f"{image_id}.xml").write_text(xml)
        ext = (image_ext or {}).get(image_id, "jpg")
        (root / "JPEGImages" / f"{image_id}.{ext}").write_bytes(b"")
    text = split_text if split_text is not None else "\n".join(annotations) + "\n"
    (root / "ImageSets" / "Main" / f"{split}.txt").write_text(text)
    return root


def _snapshot(root):
    return {
        os.path.relpath(os.path.join(d, f), root): os.stat(os.path.join(d, f)).st_mtime_ns
        for d, _, files in os.walk(root)
        for f in files
    }


def test_voc_loader_boxes_ids_difficult_and_png_fallback(tmp_path):
    root = _voc_tree(
        tmp_path / "VOC2007",
        {
            "img_a": _xml(100, 80, [("car", (10, 20, 50, 60), 1), ("person", (1, 1, 5, 9), 0)]),
            "img_b": _xml(64, 32, [("bus", (3, 4, 30, 31), 0)]),
        },
        split_text="img_a\n\n  \nimg_b\n",
        image_ext={"img_b": "png"},
    )
    before = _snapshot(root)
    dicts = load_voc_style_instances(str(root), "train", CLASSES)
    assert _snapshot(root) == before  # nothing written into the dataset folder

    assert [d["image_id"] for d in dicts] == ["img_a", "img_b"]
    a, b = dicts
    assert a["file_name"] == str(root / "JPEGImages" / "img_a.jpg")
    assert b["file_name"] == str(root / "JPEGImages" / "img_b.png")
    assert (a["height"], a["width"], b["height"], b["width"]) == (80, 100, 32, 64)
    assert [ann["bbox"] for ann in a["annotations"]] == [[9, 19, 49, 59], [0, 0, 4, 8]]
    assert [ann["category_id"] for ann in a["annotations"]] == [0, 1]
    assert [ann["difficult"] for ann in a["annotations"]] == [1, 0]
    assert all(ann["bbox_mode"] == BoxMode.XYXY_ABS for ann in a["annotations"])
    assert b["annotations"][0]["category_id"] == 2
    assert b["annotations"][0]["bbox"] == [2, 3, 29, 30]


def test_voc_loader_unknown_class_error_and_skip(tmp_path):
    root = _voc_tree(tmp_path / "voc", {"x1": _xml(50, 50, [("dog", (2, 2, 20, 20), 0),
                                                            ("car", (5, 5, 25, 25), 0)])})
    with pytest.raises(DatasetAnnotationError) as err:
        load_voc_style_instances(str(root), "train", CLASSES)
    message = str(err.value)
    assert str(root / "Annotations" / "x1.xml") in message
    assert "'dog'" in message and "car, person, bus" in message

    (kept,) = load_voc_style_instances(str(root), "train", CLASSES, unknown_classes="skip")
    assert [(a["category_id"], a["bbox"]) for a in kept["annotations"]] == [(0, [4, 4, 24, 24])]
    with pytest.raises(ValueError, match="unknown_classes"):
        load_voc_style_instances(str(root), "train", CLASSES, unknown_classes="ignore")


def test_voc_loader_zero_area_box_is_an_error(tmp_path):
    root = _voc_tree(tmp_path / "voc", {"flat": _xml(50, 50, [("car", (10, 7, 10, 30), 0)])})
    with pytest.raises(DatasetAnnotationError) as err:
        load_voc_style_instances(str(root), "train", CLASSES)
    assert str(root / "Annotations" / "flat.xml") in str(err.value)
    assert "xmin=10 ymin=7 xmax=10 ymax=30" in str(err.value)


def test_voc_loader_layout_errors_name_path_and_readme(tmp_path):
    missing_root = tmp_path / "nowhere"
    with pytest.raises(DatasetLayoutError, match="datasets/README.md") as err:
        load_voc_style_instances(str(missing_root), "train", CLASSES)
    assert str(missing_root) in str(err.value)

    root = _voc_tree(tmp_path / "voc", {"a": _xml(10, 10, [])})
    with pytest.raises(FileNotFoundError) as err:  # DatasetLayoutError is a FileNotFoundError
        load_voc_style_instances(str(root), "test", CLASSES)
    assert str(root / "ImageSets" / "Main" / "test.txt") in str(err.value)
    assert "datasets/README.md" in str(err.value)

    (root / "ImageSets" / "Main" / "empty.txt").write_text("\n \n")
    with pytest.raises(DatasetLayoutError, match="lists no images"):
        load_voc_style_instances(str(root), "empty", CLASSES)

    (root / "ImageSets" / "Main" / "ghost.txt").write_text("a\nghost\n")
    with pytest.raises(DatasetLayoutError) as err:
        load_voc_style_instances(str(root), "ghost", CLASSES)
    assert str(root / "Annotations" / "ghost.xml") in str(err.value)

    (root / "Annotations" / "a.xml").write_text("<annotation><size>")
    with pytest.raises(DatasetAnnotationError, match="Cannot parse") as err:
        load_voc_style_instances(str(root), "train", CLASSES)
    assert str(root / "Annotations" / "a.xml") in str(err.value)

    root2 = _voc_tree(tmp_path / "noimg", {"b": _xml(10, 10, [])})
    os.remove(root2 / "JPEGImages" / "b.jpg")
    with pytest.raises(DatasetLayoutError, match="b.jpg"):
        load_voc_style_instances(str(root2), "train", CLASSES)


def _polygon_json(path, width, height, objects):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"imgWidth": width, "imgHeight": height, "objects": objects}))


def _cityscapes_tree(root):
    gt = root / "gtFine" / "train"
    objects = [
        {"label": "car", "polygon": [[10, 5], [40, 5], [40, 25], [12, 30]]},
        {"label": "person", "polygon": [[-5, 40], [8, 38], [6, 70]]},  # clipped to the image
        {"label": "cargroup", "polygon": [[0, 0], [20, 20]]},
        {"label": "road", "polygon": [[0, 0], [99, 49]]},
        {"label": "bus", "polygon": [[1, 1], [30, 30]], "deleted": 1},
        {"label": "bicycle", "polygon": [[50, 10], [50.5, 30]]},  # under 1 px wide
        {"label": "rider", "polygon": [[60, 10], [70, 12], [65, 30]]},
    ]
    _polygon_json(gt / "zurich" / "zurich_000001_000002_gtFine_polygons.json", 100, 50, [])
    _polygon_json(gt / "aachen" / "aachen_000000_000019_gtFine_polygons.json", 100, 50, objects)
    for city, stem in (("aachen", "aachen_000000_000019"), ("zurich", "zurich_000001_000002")):
        for folder, suffix in (("leftImg8bit", "leftImg8bit.png"),
                               ("leftImg8bit_foggy", "leftImg8bit_foggy_beta_0.02.png")):
            image = root / folder / "train" / city / f"{stem}_{suffix}"
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(b"")
    return root


def test_cityscapes_loader_boxes_and_class_filter(tmp_path):
    root = _cityscapes_tree(tmp_path / "cityscapes")
    dicts = load_cityscapes_detection(str(root / "leftImg8bit" / "train"),
                                      str(root / "gtFine" / "train"))
    assert [d["image_id"] for d in dicts] == ["aachen_000000_000019", "zurich_000001_000002"]
    first = dicts[0]
    assert first["file_name"] == str(
        root / "leftImg8bit" / "train" / "aachen" / "aachen_000000_000019_leftImg8bit.png")
    assert (first["height"], first["width"]) == (50, 100)
    got = [(CITYSCAPES_CLASSES[a["category_id"]], a["bbox"]) for a in first["annotations"]]
    assert got == [("car", [10, 5, 40, 30]), ("person", [0, 38, 8, 50]),
                   ("rider", [60, 10, 70, 30])]
    assert all(a["bbox_mode"] == BoxMode.XYXY_ABS for a in first["annotations"])
    assert dicts[1]["annotations"] == []


def test_cityscapes_loader_foggy_suffix_and_errors(tmp_path):
    root = _cityscapes_tree(tmp_path / "cityscapes")
    gt_dir = str(root / "gtFine" / "train")
    foggy = load_cityscapes_detection(
        str(root / "leftImg8bit_foggy" / "train"), gt_dir,
        image_suffix="leftImg8bit_foggy_beta_0.02.png"
    )
    assert foggy[0]["file_name"].endswith(
        "aachen/aachen_000000_000019_leftImg8bit_foggy_beta_0.02.png")
    assert len(foggy[0]["annotations"]) == 3

    with pytest.raises(DatasetLayoutError, match="beta_0.01"):
        load_cityscapes_detection(str(root / "leftImg8bit_foggy" / "train"), gt_dir,
                                  "leftImg8bit_foggy_beta_0.01.png")
    with pytest.raises(DatasetLayoutError, match="datasets/README.md"):
        load_cityscapes_detection(str(root / "leftImg8bit" / "val"), gt_dir)
    bad = root / "gtFine" / "train" / "zurich" / "zurich_000001_000002_gtFine_polygons.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetAnnotationError, match="Cannot parse") as err:
        load_cityscapes_detection(str(root / "leftImg8bit" / "train"), gt_dir)
    assert str(bad) in str(err.value)


EXPECTED_NAMES = (
    [f"{p}_{d}_{s}" for p in ("diverse_weather", "synthetic_dw") for d in DIVERSE_WEATHER_DOMAINS
     for s in ("train", "test")]
    + ["voc_2007_trainval_cw6", "voc_2012_trainval_cw6", "voc_2012_train_cw6", "voc_2012_val_cw6",
       "voc_2007_test_cw6"]
    + ["comic_train", "comic_test", "watercolor_train", "watercolor_test"]
    + ["cityscapes_det_train", "cityscapes_det_val", "foggy_cityscapes_det_train",
       "foggy_cityscapes_det_val"]
)


def test_builtin_names_registered_at_import_and_reregistration_is_harmless():
    assert set(EXPECTED_NAMES) <= set(DatasetCatalog.list())
    assert register_all() == []


def test_default_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    assert default_root() == str(tmp_path)
    monkeypatch.delenv("DETECTRON2_DATASETS")
    assert default_root() == "datasets"


def test_register_all_metadata_and_lazy_loading(tmp_path, registered):
    root = tmp_path / "data"
    # nothing exists yet: must not fail
    registered.extend(register_all(str(root), prefix="t_meta_"))
    assert sorted(registered) == sorted("t_meta_" + n for n in EXPECTED_NAMES)

    meta = MetadataCatalog.get("t_meta_diverse_weather_night_rainy_train")
    assert meta.thing_classes == list(DIVERSE_WEATHER_CLASSES)
    assert meta.dirname == str(root / "diverse_weather" / "night_rainy" / "VOC2007")
    assert (meta.split, meta.year, meta.domain, meta.evaluator_type, meta.use_07_metric) == (
        "train", 2007, "night_rainy", "domain_ap", True,
    )
    syn = MetadataCatalog.get("t_meta_synthetic_dw_daytime_clear_test")
    assert syn.dirname == str(root / "synthetic_diverse_weather" / "daytime_clear" / "VOC2007")
    assert syn.domain == "daytime_clear"
    voc12 = MetadataCatalog.get("t_meta_voc_2012_trainval_cw6")
    assert (voc12.dirname, voc12.year, voc12.use_07_metric) == (str(root / "VOC2012"), 2012, False)
    assert voc12.thing_classes == list(COMIC_WATERCOLOR_CLASSES)
    assert MetadataCatalog.get("t_meta_voc_2007_test_cw6").split == "test"
    comic = MetadataCatalog.get("t_meta_comic_test")
    assert (comic.dirname, comic.domain, comic.split) == (str(root / "comic"), "comic", "test")
    foggy = MetadataCatalog.get("t_meta_foggy_cityscapes_det_val")
    assert foggy.thing_classes == list(CITYSCAPES_CLASSES)
    assert ((foggy.domain, foggy.evaluator_type, foggy.use_07_metric)
            == ("foggy_cityscapes", "domain_ap", False))

    with pytest.raises(DatasetLayoutError, match="datasets/README.md"):
        DatasetCatalog.get("t_meta_diverse_weather_daytime_clear_train")


def test_registered_datasets_load_from_root(tmp_path, registered):
    root = tmp_path / "data"
    _voc_tree(
        root / "diverse_weather" / "dusk_rainy" / "VOC2007",
        {"d1": _xml(40, 30, [("Rider ", (2, 3, 12, 20), 0), ("tram", (1, 1, 9, 9), 0)])},
    )
    _voc_tree(
        root / "VOC2007",
        {"v1": _xml(40, 30, [("dog", (2, 3, 12, 20), 0), ("sheep", (1, 1, 9, 9), 0),
                             ("aeroplane", (1, 1, 5, 5), 0)])},
        split="trainval",
    )
    _voc_tree(root / "watercolor", {"w1": _xml(40, 30, [("bird", (5, 5, 15, 15), 0)])},
              split="test")
    _cityscapes_tree(root / "cityscapes")
    registered.extend(register_all(str(root), prefix="t_load_"))

    # As the CLIP-the-Gap authors' loaders: names without case, other classes skipped, and
    # Diverse Weather shifts all four coordinates while Pascal VOC keeps Detectron2's xmax, ymax.
    (dusk,) = DatasetCatalog.get("t_load_diverse_weather_dusk_rainy_train")
    assert ([a["category_id"] for a in dusk["annotations"]]
            == [DIVERSE_WEATHER_CLASSES.index("rider")])
    assert dusk["annotations"][0]["bbox"] == [1, 2, 11, 19]
    (voc,) = DatasetCatalog.get("t_load_voc_2007_trainval_cw6")  # non-CW classes are skipped
    assert [a["category_id"] for a in voc["annotations"]] == [COMIC_WATERCOLOR_CLASSES.index("dog")]
    assert voc["annotations"][0]["bbox"] == [1, 2, 12, 20]
    assert MetadataCatalog.get("t_load_voc_2007_trainval_cw6").box_convention == "detectron2"
    assert MetadataCatalog.get("t_load_watercolor_test").box_convention == "shift_all"
    (wc,) = DatasetCatalog.get("t_load_watercolor_test")
    assert wc["annotations"][0]["category_id"] == COMIC_WATERCOLOR_CLASSES.index("bird")
    foggy = DatasetCatalog.get("t_load_foggy_cityscapes_det_train")
    assert foggy[0]["file_name"].endswith("_leftImg8bit_foggy_beta_0.02.png")
    assert len(DatasetCatalog.get("t_load_cityscapes_det_train")[0]["annotations"]) == 3
    with pytest.raises(DatasetLayoutError, match="cityscapes/leftImg8bit/val"):
        DatasetCatalog.get("t_load_cityscapes_det_val")
