"""Tests of the classification loaders, their registration, DG split names and the synthetic
domains."""
import os
import re

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from domaingen.data.datasets import (
    CLASSIFICATION_DATASETS,
    DG_DATASETS,
    PACS_CLASSES,
    VISDA17_CLASSES,
    VLCS_CLASSES,
    DatasetAnnotationError,
    DatasetLayoutError,
    classification_classes,
    dg_split_names,
    load_classification,
    register_all_classification,
    split_per_class,
)

PACS_DOMAINS = ("art_painting", "cartoon", "photo", "sketch")


def _images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def _domainbed(base, domain_folders, classes, count):
    """``count`` empty images per class in every domain folder (``count`` may map folder -> n)."""
    for folder in domain_folders:
        n = count[folder] if isinstance(count, dict) else count
        for cls in classes:
            _images(base / folder / cls, [f"{cls}_{i:02d}.jpg" for i in range(n)])
    return base


def _pacs(root, photo=10, others=3):
    counts = {d: photo if d == "photo" else others for d in PACS_DOMAINS}
    return _domainbed(root / "PACS", PACS_DOMAINS, PACS_CLASSES, counts)


def _snapshot(root):
    return {
        os.path.relpath(os.path.join(d, f), root): os.stat(os.path.join(d, f)).st_mtime_ns
        for d, _, files in os.walk(root)
        for f in files
    }


def _split_file(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def _ids(dicts):
    return [d["image_id"] for d in dicts]


def test_names_registered_at_import_and_reregistration_is_harmless():
    names = set(DatasetCatalog.list())
    for name in (
        "pacs_art_painting_train", "vlcs_caltech_val", "office_home_real_world_test",
        "terra_incognita_location_38_train", "domainnet_quickdraw_val", "domainnet_real_test",
        "mini_domainnet_sketch_train", "mini_domainnet_sketch_test", "visda17_synthetic_train",
        "visda17_real_test", "synthetic_domains_painting_val",
    ):
        assert name in names
    assert "mini_domainnet_sketch_val" not in names and "visda17_real_train" not in names
    assert register_all_classification() == []


def test_folder_layout_loading_and_metadata(tmp_path, registered):
    base = _pacs(tmp_path)
    _images(base / "photo" / "dog", ["upper.PNG", "notes.txt", ".hidden.jpg"])
    registered.extend(register_all_classification(str(tmp_path), prefix="t_db_"))
    expected = [
        f"t_db_{ds}_{d}_{s}" for ds, doms in CLASSIFICATION_DATASETS.items()
        for d, ss in doms.items() for s in ss
    ]
    assert sorted(registered) == sorted(expected)
    before = _snapshot(tmp_path)

    test = DatasetCatalog.get("t_db_pacs_photo_test")
    assert len(test) == 7 * 10 + 1
    assert test[0] == {
        "file_name": str(base / "photo" / "dog" / "dog_00.jpg"),
        "image_id": "photo/dog/dog_00.jpg",
        "label": 0,
        "domain": "photo",
    }
    assert "photo/dog/upper.PNG" in _ids(test)
    for d in test:
        assert (PACS_CLASSES[d["label"]] == d["image_id"].split("/")[1]
                and os.path.isfile(d["file_name"]))
    meta = MetadataCatalog.get("t_db_pacs_photo_train")
    assert meta.thing_classes == list(PACS_CLASSES)
    assert (meta.domain, meta.domains, meta.dataset, meta.split, meta.evaluator_type) == (
        "photo", list(PACS_DOMAINS), "pacs", "train", "classification",
    )
    assert _snapshot(tmp_path) == before  # nothing written into the dataset folders


def test_train_val_split_is_deterministic_per_class_and_complete(tmp_path, registered):
    _pacs(tmp_path, photo=10, others=3)
    registered.extend(register_all_classification(str(tmp_path), prefix="t_split_"))
    for domain, (n_train, n_val) in (("photo", (7, 3)), ("sketch", (2, 1))):
        train = DatasetCatalog.get(f"t_split_pacs_{domain}_train")
        val = DatasetCatalog.get(f"t_split_pacs_{domain}_val")
        test = DatasetCatalog.get(f"t_split_pacs_{domain}_test")
        assert not set(_ids(train)) & set(_ids(val))
        assert sorted(_ids(train) + _ids(val)) == sorted(_ids(test))
        for label in range(len(PACS_CLASSES)):
            assert sum(d["label"] == label for d in train) == n_train
            assert sum(d["label"] == label for d in val) == n_val
        assert _ids(train) == [i for i in _ids(test) if i in set(_ids(train))]  # input order kept
        assert train == load_classification("pacs", domain, "train", root=str(tmp_path))
        assert val == DatasetCatalog.get(f"t_split_pacs_{domain}_val")
    test = load_classification("pacs", "photo", "test", root=str(tmp_path))
    shuffled_train, _ = split_per_class(test[::-1], 0.7)
    assert sorted(_ids(shuffled_train)) == sorted(
        _ids(DatasetCatalog.get("t_split_pacs_photo_train")))
    assert sorted(_ids(split_per_class(test, 0.7, seed=1)[0])) != sorted(_ids(shuffled_train))


def test_folder_names_and_classes_from_folders(tmp_path, registered):
    vlcs = {"caltech": "Caltech101", "labelme": "LabelMe", "sun": "SUN09", "pascal": "VOC2007"}
    _domainbed(tmp_path / "VLCS", vlcs.values(), VLCS_CLASSES, 2)
    oh_classes = ("TV", "Alarm_Clock", "Mug", "Bike")
    _domainbed(tmp_path / "office_home", ("Art", "Clipart", "Product", "Real World"), oh_classes, 2)
    registered.extend(register_all_classification(str(tmp_path), prefix="t_fold_"))

    caltech = DatasetCatalog.get("t_fold_vlcs_caltech_test")
    assert {d["domain"] for d in caltech} == {"caltech"}
    assert all(d["file_name"].startswith(str(tmp_path / "VLCS" / "Caltech101")) for d in caltech)
    assert MetadataCatalog.get("t_fold_vlcs_pascal_val").thing_classes == list(VLCS_CLASSES)

    meta = MetadataCatalog.get("t_fold_office_home_real_world_train")
    assert "thing_classes" not in meta.as_dict()  # read on first access only
    assert meta.thing_classes == ["Alarm_Clock", "Bike", "Mug", "TV"]
    assert meta.as_dict()["thing_classes"] == meta.thing_classes
    real = DatasetCatalog.get("t_fold_office_home_real_world_test")
    assert ([meta.thing_classes[d["label"]] for d in real]
            == [c for c in sorted(oh_classes) for _ in range(2)])
    assert real[0]["image_id"] == "Real World/Alarm_Clock/Alarm_Clock_00.jpg"
    with pytest.raises(DatasetLayoutError, match=re.escape(str(tmp_path / "terra_incognita"))):
        MetadataCatalog.get("t_fold_terra_incognita_location_38_test").thing_classes


def test_folder_layout_errors_name_the_path(tmp_path):
    root = str(tmp_path)
    with pytest.raises(DatasetLayoutError,
                       match="(?s)" + re.escape(str(tmp_path / "PACS")) + ".*datasets/README.md"):
        load_classification("pacs", "photo", "train", root=root)
    base = _pacs(tmp_path)
    os.rename(base / "sketch" / "horse", tmp_path / "horse")
    with pytest.raises(DatasetLayoutError, match=re.escape(str(base / "sketch" / "horse"))):
        load_classification("pacs", "photo", "train", root=root)
    os.rename(tmp_path / "horse", base / "sketch" / "horse")
    (base / "cartoon" / "zebra").mkdir()
    zebra = re.escape(str(base / "cartoon" / "zebra"))
    with pytest.raises(DatasetLayoutError, match="Unexpected class folder: " + zebra):
        load_classification("pacs", "photo", "test", root=root)

    oh = _domainbed(tmp_path / "office_home", ("Art", "Clipart", "Product", "Real World"),
                    ("Bike", "Mug"), 1)
    (oh / "Product" / "Pen").mkdir()
    with pytest.raises(DatasetLayoutError,
                       match="Class folder missing: " + re.escape(str(oh / "Art" / "Pen"))):
        classification_classes("office_home", root)
    os.rename(oh / "Clipart", tmp_path / "Clipart")
    with pytest.raises(DatasetLayoutError,
                       match="Domain folder not found: " + re.escape(str(oh / "Clipart"))):
        load_classification("office_home", "art", "val", root=root)


def test_unknown_dataset_domain_or_split():
    with pytest.raises(ValueError, match="art_painting, cartoon, photo, sketch"):
        load_classification("pacs", "painting", "train")
    with pytest.raises(ValueError, match="Unknown dataset 'pacs2'.*pacs, vlcs"):
        load_classification("pacs2", "photo", "train")
    with pytest.raises(ValueError, match="train, test"):
        load_classification("mini_domainnet", "real", "val")
    with pytest.raises(ValueError, match="Unknown dataset"):
        classification_classes("imagenet")


def _domainnet(root, domain, classes, n_train, n_test, lists_dir=None):
    """Images and ``<domain>_{train,test}.txt``; ``classes`` in label order."""
    lines = {"train": [], "test": []}
    for label, cls in enumerate(classes):
        for split, n in (("train", n_train), ("test", n_test)):
            names = [f"{domain}_{cls}_{split}_{i}.jpg" for i in range(n)]
            _images(root / "domainnet" / domain / cls, names)
            lines[split] += [f"{domain}/{cls}/{name} {label}" for name in names]
    for split, split_lines in lines.items():
        _split_file((lists_dir or root / "domainnet") / f"{domain}_{split}.txt", split_lines)


def test_domainnet_official_lists_and_val_holdout(tmp_path, registered):
    classes = ("zebra", "airplane", "apple")  # label order, not alphabetical
    _domainnet(tmp_path, "clipart", classes, 20, 3)
    _domainnet(tmp_path, "real", classes, 2, 1)
    registered.extend(register_all_classification(str(tmp_path), prefix="t_dn_"))
    assert MetadataCatalog.get("t_dn_domainnet_infograph_test").thing_classes == list(classes)

    train = DatasetCatalog.get("t_dn_domainnet_clipart_train")
    val = DatasetCatalog.get("t_dn_domainnet_clipart_val")
    test = DatasetCatalog.get("t_dn_domainnet_clipart_test")
    assert [sum(d["label"] == k for d in train) for k in range(3)] == [18, 18, 18]
    assert [sum(d["label"] == k for d in val) for k in range(3)] == [2, 2, 2]
    all_train = (tmp_path / "domainnet" / "clipart_train.txt").read_text().split()[::2]
    assert sorted(_ids(train) + _ids(val)) == sorted(all_train)
    assert _ids(test) == (tmp_path / "domainnet" / "clipart_test.txt").read_text().split()[::2]
    assert test[0] == {
        "file_name": str(tmp_path / "domainnet" / "clipart" / "zebra" / "clipart_zebra_test_0.jpg"),
        "image_id": "clipart/zebra/clipart_zebra_test_0.jpg",
        "label": 0,
        "domain": "clipart",
    }
    assert _ids(train) == _ids(load_classification("domainnet", "clipart", "train",
                                                   root=str(tmp_path)))
    with pytest.raises(DatasetLayoutError,
                       match=re.escape(str(tmp_path / "domainnet" / "sketch_train.txt"))):
        DatasetCatalog.get("t_dn_domainnet_sketch_val")


def test_split_file_errors(tmp_path):
    root, lists = str(tmp_path), tmp_path / "domainnet"
    with pytest.raises(DatasetLayoutError, match=re.escape(str(lists / "clipart_train.txt"))):
        classification_classes("domainnet", root)
    _domainnet(tmp_path, "clipart", ("cat", "dog"), 2, 1)
    os.remove(lists / "clipart" / "dog" / "clipart_dog_train_1.jpg")
    missing = re.escape(str(lists / "clipart" / "dog" / "clipart_dog_train_1.jpg"))
    with pytest.raises(DatasetLayoutError, match=missing + r" \(line 4 of "):
        load_classification("domainnet", "clipart", "train", root=root)
    load_classification("domainnet", "clipart", "test", root=root)  # other lists are unaffected

    cases = [
        (["clipart/cat/a.jpg 0", "clipart/cat/b.jpg"], r"Malformed line 2 of .*clipart_test\.txt"),
        (["clipart/cat/a.jpg 0", "clipart/dog/b.jpg 0"], "Label 0 is class 'dog' at line 2"),
        (["clipart/cat/a.jpg 0", "clipart/dog/b.jpg 1", "clipart/dog/c.jpg 2"],
         "Class 'dog' has label 2 at line 3"),
        (["clipart/cat/a.jpg 0", "clipart/dog/b.jpg 2"], "label 1 never appears"),
    ]
    os.remove(lists / "clipart_train.txt")
    for lines, message in cases:
        _split_file(lists / "clipart_test.txt", lines)
        with pytest.raises(DatasetAnnotationError, match=message):
            load_classification("domainnet", "clipart", "test", root=root)


def test_mini_domainnet(tmp_path, registered):
    _domainnet(tmp_path, "sketch", ("bee", "ant"), 3, 2,
               lists_dir=tmp_path / "domainnet" / "splits_mini")
    registered.extend(register_all_classification(str(tmp_path), prefix="t_mini_"))
    assert "t_mini_mini_domainnet_sketch_val" not in registered
    assert MetadataCatalog.get("t_mini_mini_domainnet_real_train").thing_classes == ["bee", "ant"]
    train = DatasetCatalog.get("t_mini_mini_domainnet_sketch_train")
    assert len(train) == 6 and [d["label"] for d in train] == [0, 0, 0, 1, 1, 1]
    assert train[3]["file_name"] == str(
        tmp_path / "domainnet" / "sketch" / "ant" / "sketch_ant_train_0.jpg")
    assert len(DatasetCatalog.get("t_mini_mini_domainnet_sketch_test")) == 4
    real_test = re.escape(str(tmp_path / "domainnet" / "splits_mini" / "real_test.txt"))
    with pytest.raises(DatasetLayoutError, match=real_test):
        DatasetCatalog.get("t_mini_mini_domainnet_real_test")


def test_visda17(tmp_path, registered):
    visda = tmp_path / "visda17"
    _images(visda / "train" / "aeroplane", ["a.png"])
    _images(visda / "train" / "truck", ["t.png"])
    _images(visda / "validation" / "bus", ["b.jpg"])
    _split_file(visda / "train" / "image_list.txt", ["aeroplane/a.png 0", "truck/t.png 11"])
    _split_file(visda / "validation" / "image_list.txt", ["bus/b.jpg 2"])
    registered.extend(register_all_classification(str(tmp_path), prefix="t_visda_"))
    visda_names = sorted(n for n in registered if "visda17" in n)
    assert visda_names == ["t_visda_visda17_real_test", "t_visda_visda17_synthetic_train"]

    syn = DatasetCatalog.get("t_visda_visda17_synthetic_train")
    assert [(d["image_id"], d["label"], d["domain"]) for d in syn] == [
        ("aeroplane/a.png", 0, "synthetic"), ("truck/t.png", 11, "synthetic"),
    ]
    (real,) = DatasetCatalog.get("t_visda_visda17_real_test")
    assert ((real["file_name"], real["domain"])
            == (str(visda / "validation" / "bus" / "b.jpg"), "real"))
    meta = MetadataCatalog.get("t_visda_visda17_real_test")
    assert (meta.thing_classes, meta.domains) == (list(VISDA17_CLASSES), ["synthetic", "real"])
    _split_file(visda / "validation" / "image_list.txt", ["bus/b.jpg 3"])
    with pytest.raises(DatasetAnnotationError,
                       match="class folder 'bus' with label 3, but label 3 is class 'car'"):
        load_classification("visda17", "real", "test", root=str(tmp_path))
    _split_file(visda / "validation" / "image_list.txt", ["bus/b.jpg 12"])
    with pytest.raises(DatasetAnnotationError, match="out of range"):
        load_classification("visda17", "real", "test", root=str(tmp_path))


def test_dg_split_names():
    assert set(DG_DATASETS) == {"pacs", "vlcs", "office_home", "terra_incognita", "domainnet",
                                "synthetic_domains"}
    assert DG_DATASETS["vlcs"] == ("caltech", "labelme", "sun", "pascal")
    assert dg_split_names("pacs", "sketch") == {
        "train": ["pacs_art_painting_train", "pacs_cartoon_train", "pacs_photo_train"],
        "val": ["pacs_art_painting_val", "pacs_cartoon_val", "pacs_photo_val"],
        "test": ["pacs_sketch_test"],
    }
    assert dg_split_names("synthetic_domains", "photo", "single_source", prefix="x_") == {
        "train": ["x_synthetic_domains_photo_train"],
        "val": ["x_synthetic_domains_photo_val"],
        "test": [f"x_synthetic_domains_{d}_test"
                 for d in ("sketch", "cartoon", "painting", "neon")],
    }
    registered = set(DatasetCatalog.list())
    for dataset, domains in DG_DATASETS.items():
        for target in domains:
            for protocol in ("multi_source", "single_source"):
                names = dg_split_names(dataset, target, protocol)
                assert set(sum(names.values(), [])) <= registered
                assert len(names["train"]) + len(names["test"]) == len(domains)
    with pytest.raises(ValueError, match="valid: pacs, vlcs"):
        dg_split_names("mini_domainnet", "real")
    with pytest.raises(ValueError, match="location_100, location_38, location_43, location_46"):
        dg_split_names("terra_incognita", "location_1")
    with pytest.raises(ValueError, match="multi_source, single_source"):
        dg_split_names("pacs", "photo", protocol="lodo")
