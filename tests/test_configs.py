"""Every YAML under configs/ loads and builds (with the tiny CLIP); config errors name the file."""
import glob
import os

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model

from domaingen.engine import ConfigError, default_output_dir, load_config

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "configs")
CONFIGS = sorted(p for p in glob.glob(os.path.join(CONFIG_DIR, "**", "*.yaml"), recursive=True)
                 if not os.path.basename(p).startswith("Base-"))


def test_there_are_configs():
    assert any("quick" in p for p in CONFIGS) and any("diverse_weather" in p for p in CONFIGS)


# Office-Home, TerraIncognita and (Mini-)DomainNet read their class names from disk; their configs
# are built with the synthetic domains' classes (their own dataset names are checked to exist).
CLASSES_FROM_DISK = ("office_home", "terra_incognita", "domainnet", "mini_domainnet")
SYNTHETIC_UDA = ["DATASETS.TRAIN", "('synthetic_domains_photo_train',)",
                 "DATASETS.TRAIN_UNLABELED", "('synthetic_domains_sketch_test',)",
                 "DATASETS.TEST", "('synthetic_domains_sketch_test',)"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, CONFIG_DIR))
def test_config_builds_with_tiny_clip(path):
    opts = ["MODEL.CLIP.NAME", "domaingen-tiny-RN", "MODEL.CLIP.WEIGHTS", "", "MODEL.DEVICE", "cpu"]
    if load_config(path).MODEL.CLIP.NAME.startswith("domaingen-semantic-"):
        opts = opts[2:]  # the miniature world's small CLIPs, randomly initialised
    cfg = load_config(path, opts)
    if cfg.DATASETS.DG_BENCHMARK in CLASSES_FROM_DISK:
        assert cfg.DATASETS.TRAIN and cfg.DATASETS.TEST
        cfg = load_config(path, opts + ["DATASETS.DG_BENCHMARK", "synthetic_domains",
                                        "DATASETS.DG_DOMAIN", "sketch"])
    elif cfg.DATASETS.TRAIN_UNLABELED:
        names = cfg.DATASETS.TRAIN + cfg.DATASETS.TRAIN_UNLABELED + cfg.DATASETS.TEST
        assert set(names) <= set(DatasetCatalog.list())
        if MetadataCatalog.get(names[0]).dataset in CLASSES_FROM_DISK:
            cfg = load_config(path, opts + SYNTHETIC_UDA)
    model = build_model(cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert (trainable == 0 if cfg.MODEL.META_ARCHITECTURE == "ZeroShotCLIPClassifier"
            else trainable > 0)


def test_key_typo_names_the_file(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("MODEL:\n  CLIP:\n    NAMEE: RN50\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: .*MODEL\.CLIP\.NAMEE"):
        load_config(str(bad))


def test_missing_config_file():
    with pytest.raises(ConfigError, match="nope.yaml does not exist"):
        load_config("nope.yaml")


def test_default_output_dir_mirrors_the_config_path():
    assert default_output_dir("configs/quick/diverse_weather_clip_rcnn.yaml") == os.path.join(
        "output", "quick", "diverse_weather_clip_rcnn")
    cfg = load_config(os.path.join(CONFIG_DIR, "quick", "diverse_weather_clip_rcnn.yaml"))
    assert cfg.OUTPUT_DIR == os.path.join("output", "quick", "diverse_weather_clip_rcnn")
