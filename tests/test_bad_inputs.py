"""Bad images, split files, annotations and configs: each ends in an error naming the file (or a
logged, documented handling), never in a silent wrong result or a library's traceback."""
import logging
import os
import re

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import default_argument_parser
from helpers import FAST_OPTS, QUICK_CONFIG
from PIL import Image

from domaingen.data.datasets import (
    SYNTHETIC_DOMAINS,
    SYNTHETIC_DOMAINS_CLASSES,
    DatasetAnnotationError,
    DatasetLayoutError,
    load_classification,
    load_voc_style_instances,
    register_voc_style,
)
from domaingen.data.images import ImageDecodeError, read_rgb
from domaingen.data.mappers import ClassificationMapper, DetectionMapper
from domaingen.engine import (
    AtomicCheckpointer,
    CheckpointError,
    ConfigError,
    Trainer,
    load_config,
    setup,
)
from domaingen.engine.lock import OutputDirError, lock_output_dir

CAR = ("<object><name>car</name><difficult>{difficult}</difficult><bndbox><xmin>5</xmin>"
       "<ymin>5</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object>")


def voc_tree(root, ids, width=64, height=48, difficult="0", split_text=None):
    """A VOC tree with one car per image and a real 64x48 JPEG for each id."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for image_id in ids:
        Image.new("RGB", (64, 48), (90, 120, 150)).save(root / "JPEGImages" / f"{image_id}.jpg")
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><size><width>{width}</width><height>{height}</height></size>"
            f"{CAR.format(difficult=difficult)}</annotation>")
    text = split_text if split_text is not None else "\n".join(ids) + "\n"
    (root / "ImageSets" / "Main" / "train.txt").write_text(text)
    return root


def register(name, root):
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_voc_style(name, str(root), "train", MetadataCatalog.get(
        "synthetic_dw_daytime_clear_train").thing_classes)
    return name


# ------------------------------------------------------------------------------ images

def test_16_bit_png_is_scaled_to_8_bit_in_detection_and_classification(tmp_path):
    grey = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    grey[0, 0], grey[0, 1] = 0, 65535
    path = tmp_path / "deep.png"
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode == "I;16"
    expected = np.round(grey / 257.0).astype(np.uint8)  # 65535 -> 255, linear

    rgb = read_rgb(str(path)).numpy()  # what the classification mapper crops
    assert rgb.shape == (48, 64, 3) and np.array_equal(rgb, np.repeat(expected[..., None], 3, -1))
    mapper = DetectionMapper(False, augmentations=[], image_format="BGR")
    image = mapper({"file_name": str(path), "height": 48, "width": 64})["image"].numpy()
    assert np.array_equal(image, np.repeat(expected[None], 3, 0))
    assert image.mean() < 150  # PIL's own convert("RGB") clips: all 255


def test_32_bit_image_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "counts.tif"
    Image.fromarray(np.full((8, 8), 70000, dtype=np.int32)).save(path)
    with pytest.raises(ImageDecodeError) as err:
        ClassificationMapper(is_train=False)({"file_name": str(path), "label": 0})
    assert str(err.value).startswith(
        f"cannot read image {path}: its pixels are 32-bit integers (PIL mode 'I') of unknown "
        f"range; save it with 8 or 16 bits per channel.")


def test_evaluation_reads_images_with_the_training_mapper(synthetic_weather, tmp_path):
    """A zero-byte image at evaluation: ImageDecodeError as in training (Detectron2's plain
    DatasetMapper raised PIL's UnidentifiedImageError)."""
    root = voc_tree(tmp_path / "voc", ["a", "empty"])
    (root / "JPEGImages" / "empty.jpg").write_bytes(b"")
    name = register("bad_inputs_zero_byte_test", root)
    cfg = load_config(QUICK_CONFIG, [*FAST_OPTS, "DATASETS.TEST", f"('{name}',)"])
    loader = Trainer.build_test_loader(cfg, name)
    with pytest.raises(ImageDecodeError, match=re.escape(
            f"cannot read image {root / 'JPEGImages' / 'empty.jpg'}: cannot identify image file")):
        list(loader)


def test_every_training_image_unreadable_is_an_error_even_when_skipping(synthetic_weather,
                                                                       tmp_path):
    root = voc_tree(tmp_path / "voc", ["a", "b", "c"])
    for image_id in "abc":
        (root / "JPEGImages" / f"{image_id}.jpg").write_bytes(b"\xff\xd8 truncated")
    name = register("bad_inputs_all_unreadable_train", root)
    cfg = load_config(QUICK_CONFIG, [*FAST_OPTS, "DATASETS.TRAIN", f"('{name}',)",
                                     "DATALOADER.SKIP_BAD_IMAGES", "True", "SEED", "0"])
    with pytest.raises(ImageDecodeError) as err:
        next(iter(Trainer.build_train_loader(cfg)))
    assert str(err.value).startswith("all 3 training images are unreadable "
                                     "(DATALOADER.SKIP_BAD_IMAGES skipped every one; the last: ")
    assert str(err.value).endswith("nothing to train on. Check the image files of DATASETS.TRAIN.")

    mapper = ClassificationMapper(is_train=True, skip_bad_images=True, num_images=2)
    assert mapper({"file_name": str(root / "JPEGImages" / "a.jpg"), "label": 0}) is None
    with pytest.raises(ImageDecodeError, match="all 2 training images are unreadable"):
        mapper({"file_name": str(root / "JPEGImages" / "b.jpg"), "label": 0})


# ---------------------------------------------------------------------- split files and annotations

def test_an_image_listed_twice_in_a_split_file_is_an_error(tmp_path):
    root = voc_tree(tmp_path / "voc", ["a", "b"], split_text="a\nb\n\na\n")
    with pytest.raises(DatasetAnnotationError) as err:
        load_voc_style_instances(str(root), "train", ("car",))
    assert str(err.value).startswith(
        f"Image id 'a' is listed twice in {root / 'ImageSets' / 'Main' / 'train.txt'}: lines 1 "
        f"and 4; every image may appear once per split")

    base = tmp_path / "visda17" / "validation"
    (base / "aeroplane").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(base / "aeroplane" / "x.jpg")
    (base / "image_list.txt").write_text("aeroplane/x.jpg 0\naeroplane/x.jpg 0\n")
    with pytest.raises(DatasetAnnotationError, match=re.escape(
            f"Image 'aeroplane/x.jpg' is listed twice in {base / 'image_list.txt'}: "
            "lines 1 and 2")):
        load_classification("visda17", "real", "test", root=str(tmp_path))


@pytest.mark.parametrize("value", ["2", "yes"])
def test_difficult_flag_other_than_0_or_1_names_the_xml(tmp_path, value):
    root = voc_tree(tmp_path / "voc", ["a"], difficult=value)
    with pytest.raises(DatasetAnnotationError) as err:
        load_voc_style_instances(str(root), "train", ("car",))
    assert str(err.value).startswith(f"<difficult> of 'car' in {root / 'Annotations' / 'a.xml'} "
                                     f"is {value!r}; it must be 0 or 1")
    root = voc_tree(tmp_path / "ok", ["a"], difficult="1")
    assert load_voc_style_instances(str(root), "train", ("car",))[0]["annotations"][0][
        "difficult"] == 1


def test_non_positive_image_size_names_the_xml(tmp_path):
    root = voc_tree(tmp_path / "voc", ["a"], width=0)
    with pytest.raises(DatasetAnnotationError, match=re.escape(
            f"<size> of {root / 'Annotations' / 'a.xml'} is 0x48; width and height must be "
            f"positive")):
        load_voc_style_instances(str(root), "train", ("car",))


def synthetic_domains_tree(root):
    """One PNG per class and domain in the synthetic_domains folder layout."""
    for domain in SYNTHETIC_DOMAINS:
        for cls in SYNTHETIC_DOMAINS_CLASSES:
            (root / domain / cls).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(root / domain / cls / "0.png")
    return root


def test_class_folders_read_every_pil_format_and_an_empty_class_is_an_error(tmp_path, caplog):
    base = synthetic_domains_tree(tmp_path / "synthetic_domains")
    Image.new("RGB", (8, 8)).save(base / "photo" / "circle" / "1.bmp")
    Image.new("RGB", (8, 8)).save(base / "photo" / "ring" / "2.webp")
    (base / "photo" / "star" / "notes.txt").write_text("not an image")
    with caplog.at_level(logging.WARNING):
        dicts = load_classification("synthetic_domains", "photo", "test", root=str(tmp_path))
    names = sorted(os.path.basename(d["file_name"]) for d in dicts)
    assert names == ["0.png"] * 5 + ["1.bmp", "2.webp"]
    assert f"{base / 'photo'}: skipped 1 files that are not images PIL opens, e.g. " \
           f"{base / 'photo' / 'star' / 'notes.txt'}" in caplog.text

    os.remove(base / "photo" / "star" / "0.png")
    with pytest.raises(DatasetLayoutError) as err:
        load_classification("synthetic_domains", "photo", "test", root=str(tmp_path))
    assert str(err.value).startswith(f"No images in 1 class folder(s): {base / 'photo' / 'star'};"
                                     f" every class needs images in every domain")


# ------------------------------------------------------------------------------ configs

def test_yaml_syntax_error_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL:\n  WEIGHTS: [a\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(bad))
    assert str(err.value).startswith(f"{bad} is not valid YAML: while parsing a flow sequence")
    assert f'in "{bad}", line 2' in str(err.value)


def test_missing_base_names_both_files_and_a_cycle_is_an_error(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("_BASE_: Base-Nope.yaml\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(child))
    assert str(err.value) == (f"{child}: its _BASE_ 'Base-Nope.yaml' does not exist "
                              f"({tmp_path / 'Base-Nope.yaml'})")
    (tmp_path / "a.yaml").write_text("_BASE_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_BASE_: a.yaml\n")
    with pytest.raises(ConfigError, match=re.escape(
            f"_BASE_ cycle: {tmp_path / 'a.yaml'} -> {tmp_path / 'b.yaml'} -> "
            f"{tmp_path / 'a.yaml'}")):
        load_config(str(tmp_path / "a.yaml"))
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match=re.escape(
            f"{tmp_path / 'empty.yaml'} holds no mapping of config keys")):
        load_config(str(tmp_path / "empty.yaml"))


def test_a_flag_after_the_overrides_is_named():
    with pytest.raises(ConfigError, match=re.escape(
            "--resume is among the KEY VALUE overrides ['SOLVER.MAX_ITER', '5', '--resume']: put "
            "the flags (--resume, --eval-only, --num-gpus ...) before them")):
        load_config(QUICK_CONFIG, ["SOLVER.MAX_ITER", "5", "--resume"])


def test_unregistered_dataset_lists_close_matches(tmp_path):
    args = default_argument_parser().parse_args(
        ["--config-file", QUICK_CONFIG, "DATASETS.TEST", "('synthetic_dw_night_suny_test',)",
         "OUTPUT_DIR", str(tmp_path)])
    with pytest.raises(ConfigError) as err:
        setup(args)
    assert str(err.value).startswith(
        "DATASETS.TEST: dataset 'synthetic_dw_night_suny_test' is not registered; closest "
        "registered names: synthetic_dw_night_sunny_test, ")
    assert not os.listdir(tmp_path)  # refused before anything was written


def test_a_training_split_without_objects_is_named(synthetic_weather, tmp_path):
    name = "test_bad_inputs_no_objects"
    if name not in DatasetCatalog.list():
        dicts = [{**d, "annotations": []}
                 for d in DatasetCatalog.get("synthetic_dw_daytime_clear_train")]
        DatasetCatalog.register(name, lambda: dicts)
        MetadataCatalog.get(name).set(
            thing_classes=MetadataCatalog.get("synthetic_dw_daytime_clear_train").thing_classes)
    cfg = load_config(QUICK_CONFIG, [*FAST_OPTS, "DATASETS.TRAIN", f"('{name}',)",
                                     "OUTPUT_DIR", str(tmp_path)])
    with pytest.raises(DatasetAnnotationError, match=re.escape(
            f"DATASETS.TRAIN ['{name}']: no training image left")) as err:
        Trainer(cfg)
    assert "DATALOADER.FILTER_EMPTY_ANNOTATIONS False" in str(err.value)


def test_a_mistyped_device_is_named():
    with pytest.raises(ConfigError, match=re.escape(
            "MODEL.DEVICE='cdua' is not a device: use cpu, cuda or cuda:<index>")):
        load_config(QUICK_CONFIG, ["MODEL.DEVICE", "cdua"])


def test_an_empty_batch_a_folder_as_weights_and_a_file_as_output_dir_are_named(tmp_path):
    with pytest.raises(ConfigError, match=re.escape(
            "SOLVER.IMS_PER_BATCH=0: a batch holds at least one image")):
        load_config(QUICK_CONFIG, ["SOLVER.IMS_PER_BATCH", "0"])
    model = Trainer.build_model(load_config(QUICK_CONFIG, ["MODEL.DEVICE", "cpu"]))
    with pytest.raises(CheckpointError, match=re.escape(
            f"{tmp_path} is a folder, not a checkpoint (MODEL.WEIGHTS)")):
        AtomicCheckpointer(model, strict=True).load(str(tmp_path))
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(OutputDirError, match=re.escape(f"OUTPUT_DIR {a_file} is a file")):
        lock_output_dir(str(a_file))


def test_no_iteration_or_no_training_set_is_named(tmp_path):
    with pytest.raises(ConfigError, match=re.escape(
            "SOLVER.MAX_ITER=-5: train at least one iteration")):
        load_config(QUICK_CONFIG, ["SOLVER.MAX_ITER", "-5"])
    cfg = load_config(QUICK_CONFIG, ["DATASETS.TRAIN", "()", "OUTPUT_DIR", str(tmp_path)])
    with pytest.raises(ConfigError, match=re.escape("DATASETS.TRAIN is empty: name the training")):
        Trainer(cfg)
