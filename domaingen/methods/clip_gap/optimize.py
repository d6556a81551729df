"""Running CLIP the Gap's optimization step: from the trainer (a hook) or on its own."""
import logging
import os
import time
from typing import List

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm
from torch.nn.parallel import DistributedDataParallel

from domaingen.utils.plots import line_chart

from .crops import build_crops_loader
from .step import augmentation_step, stack_crops

logger = logging.getLogger(__name__)

BANK_FILE = "augmentation_bank.pth"


def optimize_augmentations(cfg, model, iters: int = None) -> List[float]:
    """Train ``model.augmentation_bank`` for ``iters`` (default ``MODEL.CLIP_GAP.OPT_ITERS``)
    iterations on random crops of ``DATASETS.TRAIN``; only the bank changes. Logs the loss
    with an ETA, and on the main process writes the bank and a loss-curve PNG to OUTPUT_DIR.
    Returns the loss of every iteration."""
    c = cfg.MODEL.CLIP_GAP
    iters = c.OPT_ITERS if iters is None else iters
    bank = model.augmentation_bank
    optimizer = torch.optim.Adam([bank.offsets], lr=c.OPT_LR, weight_decay=0.0)
    loader = iter(build_crops_loader(cfg))
    losses, start = [], time.perf_counter()
    logger.info(f"Optimizing {len(bank)} semantic augmentations of shape "
                f"{tuple(bank.offsets.shape[1:])} for {iters} iterations")
    for it in range(iters):
        losses.append(augmentation_step(
            model, stack_crops(next(loader)), optimizer, c.OPT_L1_WEIGHT,
            loss_over_m_plus_1=c.OPT_LOSS_OVER_M_PLUS_1,
            clean_pass_per_prompt=c.OPT_CLEAN_PASS_PER_PROMPT))
        if (it + 1) % c.OPT_LOG_PERIOD == 0 or it + 1 == iters:
            elapsed = time.perf_counter() - start
            eta = elapsed / (it + 1) * (iters - it - 1)
            logger.info(f"augmentation iter {it + 1}/{iters}  L_opt {losses[-1]:.5f}  "
                        f"{(it + 1) / elapsed:.2f} it/s  eta {eta:.0f}s")
    if c.RANDOM_DIRECTIONS:
        bank.randomize_directions(cfg.SEED)
        logger.info("MODEL.CLIP_GAP.RANDOM_DIRECTIONS: each learned offset replaced by a random "
                    "direction of the same norm (a control)")
    if comm.is_main_process() and cfg.OUTPUT_DIR:
        path = os.path.join(cfg.OUTPUT_DIR, BANK_FILE)
        bank.save(path)
        line_chart(os.path.join(cfg.OUTPUT_DIR, "augmentation_loss.png"), losses,
                   xlabel="iteration", ylabel="L_opt", title="Semantic augmentation optimization")
        logger.info(f"Saved the augmentation bank to {path}")
    return losses


class SemanticAugmentationHook(HookBase):
    """Before detector training, run the optimization step unless the bank is already trained
    (loaded from ``MODEL.CLIP_GAP.AUG_WEIGHTS``, or restored by ``--resume``)."""

    def before_train(self):
        model = self.trainer.model
        if isinstance(model, DistributedDataParallel):
            model = model.module
        cfg = self.trainer.cfg
        if int(model.augmentation_bank.optimized_iters) > 0 or cfg.MODEL.CLIP_GAP.AUG_WEIGHTS:
            logger.info("Semantic augmentations already optimized: skipping the optimization step")
            return
        if cfg.MODEL.CLIP_GAP.OPT_ITERS > 0:
            optimize_augmentations(cfg, model)
