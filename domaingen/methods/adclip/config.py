"""AD-CLIP's config keys."""
from detectron2.config import CfgNode as CN


def add_adclip_config(cfg: CN) -> None:
    """``MODEL.ADCLIP`` (AD-CLIP) and its unlabelled target data."""
    cfg.MODEL.ADCLIP = CN()
    # Loss weights: source cross-entropy, style-mapping MSE, target entropy, text-feature KL.
    cfg.MODEL.ADCLIP.CE_WEIGHT = 1.0
    cfg.MODEL.ADCLIP.STYLE_MAPPING_WEIGHT = 0.1
    cfg.MODEL.ADCLIP.ENTROPY_WEIGHT = 0.01
    cfg.MODEL.ADCLIP.KL_WEIGHT = 1.0
    # Authors' quirk: L2-normalise the target probabilities over the batch before the entropy.
    # False = the paper's mean entropy of the softmax.
    cfg.MODEL.ADCLIP.AUTHORS_ENTROPY = False
    # Image-token slots in the prompt (authors: 4).
    cfg.MODEL.ADCLIP.IMAGE_TOKENS = 4
    # Authors: one Linear(L, 1) layer mixer, its token repeated IMAGE_TOKENS times (identical
    # tokens). False = one mixer per image token (Linear(L, IMAGE_TOKENS)).
    cfg.MODEL.ADCLIP.SHARED_IMAGE_MIXER = True
    # Hidden width of the style (domain-token) projector (authors: 256 in their RN50 and
    # ViT-B/16 trainers; 512 in their ViT-L/14 trainer).
    cfg.MODEL.ADCLIP.STYLE_HIDDEN_DIM = 256
    # Hidden width of the style-mapping projector at every layer (authors: 384 in their RN50
    # and ViT-B/16 trainers; 256 in their ViT-L/14 trainer).
    cfg.MODEL.ADCLIP.STYLE_MAPPING_HIDDEN_DIM = 384
    # Authors' bug (RN50 only): their RN50 trainer keeps the first Linear layer of each
    # projector (style, content, style mapping; all 4 stages, 4.4 M values) in Python lists, so
    # those layers stay at their random init, untrained and not saved. True = the same on
    # ResNet towers: fixed layers drawn from UNTRAINED_LAYERS_SEED (so an evaluation rebuilds
    # them), not trained, not in checkpoints. No effect on ViT towers (their ViT trainers train
    # every layer). False = every projector layer trains.
    cfg.MODEL.ADCLIP.AUTHORS_UNTRAINED_FIRST_LAYERS = False
    cfg.MODEL.ADCLIP.UNTRAINED_LAYERS_SEED = 0
    # Authors' bug: their Dassl scheduler (one linear warm-up epoch from BASE_LR *
    # WARMUP_FACTOR, then CosineAnnealingLR with T_max = their 50 epochs) is stepped after every
    # iteration instead of every epoch: iteration 0 at BASE_LR * WARMUP_FACTOR, then
    # BASE_LR * (1 + cos(pi * (iter - 1) / AUTHORS_LR_EPOCHS)) / 2, a cosine that repeats every
    # 2 * AUTHORS_LR_EPOCHS iterations. True = that schedule (replaces LR_SCHEDULER_NAME and the
    # warm-up); False = Detectron2's warm-up and one cosine over MAX_ITER.
    cfg.MODEL.ADCLIP.AUTHORS_LR_SCHEDULE = False
    cfg.MODEL.ADCLIP.AUTHORS_LR_EPOCHS = 50
    # Encode prompts only up to their end-of-text token (exact); False = the 77-token path.
    cfg.MODEL.ADCLIP.TRUNCATE_TEXT = True
    # Unlabelled target training sets; non-empty = the paired source/target loader
    # (SOLVER.IMS_PER_BATCH source images + as many target images per step).
    cfg.DATASETS.TRAIN_UNLABELED = ()
