"""Optional speed settings applied to a built model (CUDA oriented, off by default)."""
import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)


def image_tower(model: nn.Module) -> nn.Module:
    """The CLIP image trunk: the detector's backbone, or a classifier's visual tower."""
    return model.backbone if hasattr(model, "backbone") else model.visual


def apply_speed_options(model: nn.Module, cfg) -> nn.Module:
    """``MODEL.CHANNELS_LAST``: 4-D weights in channels-last memory format (faster convolutions
    with cuDNN). ``MODEL.COMPILE``: ``torch.compile`` the image tower in place, so parameter
    names and checkpoints do not change."""
    if cfg.MODEL.CHANNELS_LAST:
        model.to(memory_format=torch.channels_last)
    if cfg.MODEL.COMPILE:
        image_tower(model).compile()
        logger.info("MODEL.COMPILE: the image tower compiles on its first call")
    return model
