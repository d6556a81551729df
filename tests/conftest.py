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


@pytest.fixture(autouse=True)
def seeded_rngs():
    """Every test starts from seed 0 (torch, numpy, random): torch seeds its default generator
    differently in every process, so unseeded tests would draw different values each run."""
    from detectron2.utils.env import seed_all_rng

    seed_all_rng(0)


@pytest.fixture(scope="session")
def synthetic_weather():
    """The synthetic Diverse Weather tree at the registered location (generated once)."""
    from domaingen.miniature.synthetic import generate_diverse_weather

    root = os.path.join(os.environ["DETECTRON2_DATASETS"], "synthetic_diverse_weather")
    generate_diverse_weather(root, seed=0, num_train=24, num_test=8, num_target=6)
    return root


@pytest.fixture(scope="session")
def synthetic_domains():
    """The synthetic classification domains (photo, sketch, cartoon, painting; 6 images per
    class and domain) at the registered location."""
    from domaingen.miniature.synthetic.domains import generate_domains

    generate_domains(os.environ["DETECTRON2_DATASETS"], seed=0, num_per_class=6)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_on_cpu(worker, args, nprocs=2):
    """Run ``worker(*args)`` in ``nprocs`` gloo processes through Detectron2's ``launch``.

    The free port is chosen before the processes bind it, so another program can take it in
    between: one retry on a fresh port keeps that race from failing a test; a real failure
    fails twice.
    """
    from detectron2.engine import launch

    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # spawned ranks use GLOO on CPU
    try:
        for attempt in range(2):
            try:
                return launch(worker, nprocs, dist_url=f"tcp://127.0.0.1:{_free_port()}",
                              args=args)
            except Exception:
                if attempt:
                    raise
    finally:
        if previous is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = previous


@pytest.fixture(scope="session")
def standin_clip():
    """Path of the contrastively trained tiny-ViT stand-in for pretrained CLIP weights (kept in
    the temp dir between runs: same model, steps and seed give the same file)."""
    from domaingen.miniature.standin import train_standin_clip

    path = os.path.join(tempfile.gettempdir(), "domaingen-test-cache", "standin-tiny-ViT-200.pt")
    if not os.path.exists(path):
        train_standin_clip("domaingen-tiny-ViT", path, steps=200)
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
    from detectron2.modeling import build_model

    from clip_gap_helpers import small_cfg

    torch.manual_seed(0)  # the RPN and box heads initialise from the global RNG
    return build_model(small_cfg())


@pytest.fixture
def model(base_model):
    """A private copy of ``base_model``: tests change its offsets."""
    import copy

    return copy.deepcopy(base_model)
