"""Per-step seeding: what lets ``--resume`` continue an interrupted run exactly."""
import random

import numpy as np
import torch
from detectron2.utils import comm


def seed_step(seed: int, iteration: int) -> None:
    """Seed torch's, numpy's and Python's global RNGs from (seed, iteration, rank).

    Called before each training step (after the data iterators exist: creating one draws from
    torch's RNG), it makes the step's data augmentation (in-process loading), ROI sampling,
    noise and dropout depend on nothing a resumed run could lose.
    """
    step = ((seed * 1_000_003 + iteration) * 131 + comm.get_rank()) % 2**32
    torch.manual_seed(step)
    np.random.seed(step)
    random.seed(step)
