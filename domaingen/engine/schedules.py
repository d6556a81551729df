"""Learning-rate schedules beyond Detectron2's.

Dassl's epoch-wise warm-up and cosine, which Dassl-based prompt-learning code runs
(dassl/optim/lr_scheduler.py):

``SOLVER.LR_SCHEDULER_NAME: "EpochWarmupCosineLR"`` keeps the learning rate constant within each
epoch (Dassl steps its scheduler once per epoch), with ``SOLVER.WARMUP_EPOCHS`` of warm-up
(``WARMUP_METHOD`` "constant": ``WARMUP_FACTOR * BASE_LR`` throughout; "linear":
``WARMUP_FACTOR * BASE_LR`` in epoch 0, then ``BASE_LR * e / WARMUP_EPOCHS``), then a cosine that
starts at ``BASE_LR`` when the warm-up ends and spans ``SOLVER.EPOCHS`` epochs (so with a warm-up
it stops short of 0, as Dassl's with ``WARMUP_RECOUNT``). Any other name is Detectron2's.
"""
import math

import torch
from detectron2.solver import build_lr_scheduler as build_detectron2_lr_scheduler

EPOCH_SCHEDULER = "EpochWarmupCosineLR"


def epoch_lr_factor(epoch: int, epochs: int, warmup_epochs: int, warmup_method: str,
                    warmup_factor: float) -> float:
    """Learning rate / ``BASE_LR`` in epoch ``epoch`` (counted from 0)."""
    if epoch < warmup_epochs:
        if warmup_method == "constant" or epoch == 0:
            return warmup_factor
        return epoch / warmup_epochs
    return 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / epochs))


def build_lr_scheduler(cfg, optimizer):
    """The scheduler ``SOLVER.LR_SCHEDULER_NAME`` names, stepped once per iteration."""
    s = cfg.SOLVER
    if s.LR_SCHEDULER_NAME != EPOCH_SCHEDULER:
        return build_detectron2_lr_scheduler(cfg, optimizer)
    if s.EPOCHS <= 0:
        raise ValueError(f"SOLVER.LR_SCHEDULER_NAME {EPOCH_SCHEDULER!r} counts epochs: set "
                         f"SOLVER.EPOCHS (and SOLVER.WARMUP_EPOCHS), not SOLVER.MAX_ITER")
    if s.WARMUP_METHOD not in ("constant", "linear"):
        raise ValueError(f"SOLVER.WARMUP_METHOD must be 'constant' or 'linear' for "
                         f"{EPOCH_SCHEDULER}, got {s.WARMUP_METHOD!r}")
    per_epoch = s.MAX_ITER // s.EPOCHS  # the Trainer set MAX_ITER = EPOCHS * iterations/epoch
    args = (s.EPOCHS, s.WARMUP_EPOCHS, s.WARMUP_METHOD, s.WARMUP_FACTOR)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda iteration: epoch_lr_factor(iteration // per_epoch, *args))
