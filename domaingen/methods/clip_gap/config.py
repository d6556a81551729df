"""CLIP the Gap's config keys."""
from detectron2.config import CfgNode as CN

# The CLIP-the-Gap authors' target domain prompts, in the order of their prompt file
# (time-major: the five weathers at night, then by day, then in the evening), so that bank
# entry j is their offset j.
CLIP_GAP_TARGET_PROMPTS = [
    f"an image taken on a {weather} {time}"
    for time in ("night", "day", "evening")
    for weather in ("snow", "fog", "cloudy", "rain", "stormy")
]


def add_clip_gap_config(cfg: CN) -> None:
    """``MODEL.CLIP_GAP``: semantic augmentations and their optimization step."""
    cfg.MODEL.CLIP_GAP = CN()
    # Domain prompts: the source domain, and one augmentation per target prompt.
    cfg.MODEL.CLIP_GAP.SOURCE_PROMPT = "an image taken during the day"
    cfg.MODEL.CLIP_GAP.TARGET_PROMPTS = list(CLIP_GAP_TARGET_PROMPTS)
    # Probability that a training batch gets semantic augmentations.
    cfg.MODEL.CLIP_GAP.AUG_PROB = 0.5
    # Authors' quirk: augment when rand > AUG_PROB, i.e. with probability 1 - AUG_PROB.
    cfg.MODEL.CLIP_GAP.AUG_WHEN_RAND_ABOVE_PROB = False
    # A saved augmentation bank (.pth from tools/optimize_augmentations.py); "" = none.
    cfg.MODEL.CLIP_GAP.AUG_WEIGHTS = ""
    # Optimization-step iterations run before detector training when no bank is loaded
    # (authors: 1000); 0 = skip.
    cfg.MODEL.CLIP_GAP.OPT_ITERS = 1000
    # Adam learning rate of the bank (authors: 0.01, no weight decay).
    cfg.MODEL.CLIP_GAP.OPT_LR = 0.01
    # Source images per optimization step, and random crops taken from each (authors: 4 x 15).
    cfg.MODEL.CLIP_GAP.OPT_IMS_PER_BATCH = 4
    cfg.MODEL.CLIP_GAP.OPT_CROPS_PER_IMAGE = 15
    # Images are resized to this short side (and flipped at random) before cropping.
    cfg.MODEL.CLIP_GAP.OPT_MIN_SIZE = 600
    # Side of the square random crops, and the side they are resized to (CLIP's input size;
    # the offsets then have spatial size OPT_INPUT_SIZE / 16).
    cfg.MODEL.CLIP_GAP.OPT_CROP_SIZE = 400
    cfg.MODEL.CLIP_GAP.OPT_INPUT_SIZE = 224
    # How crops are resized to OPT_INPUT_SIZE: "bilinear" (the authors: torchvision's tensor
    # resize, no antialiasing, rounded to uint8) or "cubic" (OpenCV's INTER_CUBIC).
    cfg.MODEL.CLIP_GAP.OPT_CROP_INTERPOLATION = "bilinear"
    # Weight of the L1 regulariser |z_bar - z| in the optimization loss.
    cfg.MODEL.CLIP_GAP.OPT_L1_WEIGHT = 1.0
    # Log the optimization loss every this many iterations.
    cfg.MODEL.CLIP_GAP.OPT_LOG_PERIOD = 20
    # Authors' quirks of the optimization step (all False = ours):
    # divide the summed loss by M + 1 instead of averaging over the M prompts (with Adam the
    # scale still matters where gradients are not much larger than its eps);
    cfg.MODEL.CLIP_GAP.OPT_LOSS_OVER_M_PLUS_1 = False
    # run the clean layer4 pass again for every prompt (2M instead of M + 1 layer4 passes per
    # iteration; only train-mode BatchNorm statistics, MODEL.CLIP.FROZEN_BN False, differ);
    cfg.MODEL.CLIP_GAP.OPT_CLEAN_PASS_PER_PROMPT = False
    # count the OPT_ITERS iterations as the first iterations of the detector's schedule: the
    # detector then trains SOLVER.MAX_ITER - OPT_ITERS iterations, starting at iteration
    # OPT_ITERS of the LR schedule, evaluation and checkpoint periods.
    cfg.MODEL.CLIP_GAP.OPT_ITERS_IN_SCHEDULE = False
    # A control, not a method setting: after the optimization step, replace each entry by a
    # random channel direction (seeded by SEED) with the norm of its channel mean.
    cfg.MODEL.CLIP_GAP.RANDOM_DIRECTIONS = False
