"""Shared fixtures: tests read synthetic data from a private DETECTRON2_DATASETS root.

The variable is set before domaingen is imported (which registers the built-in datasets), so the
registered ``synthetic_dw_*`` names point at the generated tree.
"""
import os
import tempfile

import pytest

os.environ["DETECTRON2_DATASETS"] = os.path.join(tempfile.gettempdir(), "domaingen-test-datasets")

QUICK_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "quick",
                            "diverse_weather_clip_rcnn.yaml")
# Small and fast: tests check behaviour, the quickstart shows accuracy.
FAST_OPTS = [
    "DATALOADER.NUM_WORKERS", "0",
    "SOLVER.IMS_PER_BATCH", "2",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
    "DATASETS.TEST", "('synthetic_dw_daytime_clear_test',)",
]


@pytest.fixture(scope="session")
def synthetic_weather():
    """The synthetic Diverse Weather tree at the registered location (generated once)."""
    from domaingen.data.synthetic import generate_diverse_weather

    root = os.path.join(os.environ["DETECTRON2_DATASETS"], "synthetic_diverse_weather")
    generate_diverse_weather(root, seed=0, num_train=24, num_test=8, num_target=6)
    return root
