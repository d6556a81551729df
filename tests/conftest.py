"""Shared fixtures: tests read synthetic data from a private DETECTRON2_DATASETS root.

The variable is set before domaingen is imported (which registers the built-in datasets), so the
registered ``synthetic_dw_*`` names point at the generated tree.
"""
import os
import tempfile

import pytest

os.environ["DETECTRON2_DATASETS"] = os.path.join(tempfile.gettempdir(), "domaingen-test-datasets")

@pytest.fixture(autouse=True)
def seeded_rngs():
    """Every test starts from seed 0 (torch, numpy, random): torch seeds its default generator
    differently in every process, so unseeded tests would draw different values each run."""
    from detectron2.utils.env import seed_all_rng

    seed_all_rng(0)


@pytest.fixture
def registered():
    """Dataset names a test registers; removed from both catalogs afterwards."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    names = []
    yield names
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


@pytest.fixture(scope="session")
def synthetic_weather():
    """The synthetic Diverse Weather tree at the registered location (generated once)."""
    from domaingen.miniature.synthetic import generate_diverse_weather

    root = os.path.join(os.environ["DETECTRON2_DATASETS"], "synthetic_diverse_weather")
    generate_diverse_weather(root, seed=0, num_train=24, num_test=8, num_target=6)
    return root


@pytest.fixture(scope="session")
def synthetic_domains():
    """The synthetic classification domains (photo, sketch, cartoon, painting, neon; 6 images
    per class and domain) at the registered location."""
    from domaingen.miniature.synthetic.domains import generate_domains

    generate_domains(os.environ["DETECTRON2_DATASETS"], seed=0, num_per_class=6)


@pytest.fixture
def launch_on_cpu():
    """:func:`helpers.launch_on_cpu`: run a worker in N gloo processes."""
    from helpers import launch_on_cpu

    return launch_on_cpu


STANDIN_STEPS = 300


@pytest.fixture(scope="session")
def standin_clip():
    """Path of a contrastively trained stand-in for pretrained CLIP weights: the semantic RN on
    a short schedule (kept in the temp dir between runs: same recipe, world version and seed
    give the same file)."""
    from domaingen.miniature import standin

    path = os.path.join(tempfile.gettempdir(), "domaingen-test-cache",
                        f"standin-semantic-RN-{STANDIN_STEPS}-v{standin.VERSION}.pt")
    if not os.path.exists(path):
        standin.train_standin_clip("domaingen-semantic-RN", path, steps=STANDIN_STEPS,
                                   num_street=1500, num_shapes=4000)
    return path


@pytest.fixture(scope="module")
def clip():
    """The tiny CLIP of the CLIP-the-Gap tests' small config."""
    from clip_gap_helpers import small_cfg

    from domaingen.clip import build_clip_from_cfg

    return build_clip_from_cfg(small_cfg())


@pytest.fixture(scope="module")
def base_model():
    """The CLIP-the-Gap tests' small ClipGapRCNN (frozen BN, three target prompts)."""
    import torch
    from clip_gap_helpers import small_cfg
    from detectron2.modeling import build_model

    torch.manual_seed(0)  # the RPN and box heads initialise from the global RNG
    return build_model(small_cfg())


@pytest.fixture
def model(base_model):
    """A private copy of ``base_model``: tests change its offsets."""
    import copy

    return copy.deepcopy(base_model)
