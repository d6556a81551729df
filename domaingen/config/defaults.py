"""Every config key domaingen adds to Detectron2's, with its default."""
from detectron2.config import CfgNode as CN


def add_clip_config(cfg: CN) -> None:
    """``MODEL.CLIP``: which CLIP model the detector and classifiers are cut from."""
    cfg.MODEL.CLIP = CN()
    # open_clip model name: RN50, RN101, ViT-B-16, ... or domaingen-tiny-RN / -ViT for tests.
    cfg.MODEL.CLIP.NAME = "RN101"
    # "" = random init; a local weights file (open_clip/OpenAI state dict or OpenAI TorchScript
    # archive); or an open_clip pretrained tag such as "openai" (needs network access).
    cfg.MODEL.CLIP.WEIGHTS = ""
    # "auto" = QuickGELU exactly when the weights are OpenAI's; "true"/"false" force it.
    cfg.MODEL.CLIP.QUICK_GELU = "auto"
    # Replace CLIP's BatchNorm2d with FrozenBatchNorm2d. False = the CLIP-the-Gap authors'
    # train-mode BatchNorm (running statistics keep updating, even in "frozen" stages).
    cfg.MODEL.CLIP.FROZEN_BN = True
    # Where converted OpenAI TorchScript archives are cached; "" = $DOMAINGEN_CACHE or
    # ~/.cache/domaingen.
    cfg.MODEL.CLIP.CACHE_DIR = ""
    # Seed of the random initialisation (WEIGHTS == ""), so every part built from CLIP agrees.
    cfg.MODEL.CLIP.INIT_SEED = 0


def add_text_classifier_config(cfg: CN) -> None:
    """``MODEL.TEXT_CLASSIFIER``: box classification against CLIP text embeddings."""
    cfg.MODEL.TEXT_CLASSIFIER = CN()
    # Prompt templates, each with one "{}" for the class name; embeddings are averaged.
    cfg.MODEL.TEXT_CLASSIFIER.TEMPLATES = ["a photo of a {}."]
    # Multiplies the cosine similarity between ROI and text embeddings (authors: 100).
    cfg.MODEL.TEXT_CLASSIFIER.LOGIT_SCALE = 100.0
    # Background logit: "zero" (a constant 0 column, as the authors) or "learned" (one bias).
    cfg.MODEL.TEXT_CLASSIFIER.BACKGROUND = "zero"
    # A learnable Linear(D, D) on the ROI embedding before normalisation (identity-initialised).
    cfg.MODEL.TEXT_CLASSIFIER.PROJECTION = False


def add_domaingen_config(cfg: CN) -> CN:
    """Add every domaingen key to a Detectron2 config (in place) and return it."""
    add_clip_config(cfg)
    add_text_classifier_config(cfg)
    return cfg
