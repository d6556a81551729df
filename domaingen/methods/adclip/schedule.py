"""The AD-CLIP authors' LR schedule (``MODEL.ADCLIP.AUTHORS_LR_SCHEDULE``): their Dassl scheduler
is built per epoch (linear warm-up for WARMUP_EPOCH 1 from WARMUP_MIN_LR, then
``CosineAnnealingLR(T_max=MAX_EPOCH)``) but their ``forward_backward`` calls ``update_lr()`` after
every iteration: the warm-up lasts one iteration and the cosine, counted in iterations, repeats
every 2 * MAX_EPOCH iterations for the whole run.
"""
import functools
import math

import torch


def authors_adclip_lr_factor(iteration: int, warmup_factor: float, t_max: int) -> float:
    """LR / BASE_LR at ``iteration``: ``warmup_factor`` at 0, then
    (1 + cos(pi (iteration - 1) / t_max)) / 2."""
    if iteration == 0:
        return warmup_factor
    return 0.5 * (1.0 + math.cos(math.pi * (iteration - 1) / t_max))


def build_authors_adclip_lr_scheduler(cfg, optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule above, with ``SOLVER.WARMUP_FACTOR`` and ``MODEL.ADCLIP.AUTHORS_LR_EPOCHS``."""
    t_max = cfg.MODEL.ADCLIP.AUTHORS_LR_EPOCHS
    if t_max <= 0:
        raise ValueError(f"MODEL.ADCLIP.AUTHORS_LR_EPOCHS must be positive with "
                         f"MODEL.ADCLIP.AUTHORS_LR_SCHEDULE True, got {t_max}")
    factor = functools.partial(authors_adclip_lr_factor, warmup_factor=cfg.SOLVER.WARMUP_FACTOR,
                               t_max=t_max)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
