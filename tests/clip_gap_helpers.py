"""CLIP the Gap test helpers: configs and the small bank (fixtures: conftest.py)."""
import os

from domaingen.engine import load_config
from domaingen.methods.clip_gap import build_augmentation_bank

REPO = os.path.join(os.path.dirname(__file__), "..")
GAP_CONFIG = os.path.join(REPO, "configs", "quick", "diverse_weather_clip_gap.yaml")
TRAIN_SET = "synthetic_dw_daytime_clear_train"
SOURCE = "an image taken during the day"
TARGETS = ["an image taken on a snow night", "an image taken on a fog day",
           "an image taken on a rain evening"]
RES4_CHANNELS = 128  # domaingen-tiny-RN: layer3 output
SIDE = 224 // 16


def gap_cfg(*opts):
    return load_config(GAP_CONFIG, ["MODEL.DEVICE", "cpu", *opts])


def small_cfg(*opts):
    """Frozen BatchNorm (the default mode), three target prompts, AUG_PROB 0.3."""
    return gap_cfg("MODEL.CLIP.FROZEN_BN", "True", "MODEL.CLIP_GAP.TARGET_PROMPTS", str(TARGETS),
                   "MODEL.CLIP_GAP.AUG_PROB", "0.3", *opts)


def small_bank(clip, *opts):
    return build_augmentation_bank(small_cfg(*opts), clip, RES4_CHANNELS)
