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
    # Precision of the frozen CLIP towers of the image classifiers: "fp32", or "fp16" (OpenAI's
    # half-precision weights with fp32 LayerNorms, as the SPG authors' CLIP loader builds them;
    # a GPU-memory choice). Learned prompts stay fp32. The detectors always build CLIP in fp32.
    cfg.MODEL.CLIP.PRECISION = "fp32"
    # Image classifiers: keep only each 256-prompt chunk's input to the frozen text transformer
    # and recompute its activations in backward (torch.utils.checkpoint). Same gradients, one
    # more text forward pass; what lets image-conditioned prompts (AD-CLIP, CoCoOp) at many
    # classes and large batches fit in memory (docs/performance.md).
    cfg.MODEL.CLIP.TEXT_CHECKPOINT = False


def add_text_classifier_config(cfg: CN) -> None:
    """``MODEL.TEXT_CLASSIFIER``: box classification against CLIP text embeddings."""
    cfg.MODEL.TEXT_CLASSIFIER = CN()
    # Prompt templates, each with one "{}" for the class name; embeddings are averaged.
    # The CLIP-the-Gap authors encode "a photo of a {}" (no period).
    cfg.MODEL.TEXT_CLASSIFIER.TEMPLATES = ["a photo of a {}"]
    # Multiplies the cosine similarity between ROI and text embeddings (authors: 100).
    cfg.MODEL.TEXT_CLASSIFIER.LOGIT_SCALE = 100.0
    # Background logit: "zero" (a constant 0 column, as the authors) or "learned" (one bias).
    cfg.MODEL.TEXT_CLASSIFIER.BACKGROUND = "zero"
    # A learnable Linear(D, D) on the ROI embedding before normalisation (identity-initialised).
    cfg.MODEL.TEXT_CLASSIFIER.PROJECTION = False


def add_detection_data_config(cfg: CN) -> None:
    """Detection evaluation: test sets evaluated without their empty images; the AP's boxes."""
    # Names from DATASETS.TEST whose images with no annotated object (of the dataset's classes)
    # are left out of evaluation, as the CLIP-the-Gap authors' Diverse Weather and
    # Comic/Watercolor loaders do for every split. () = evaluate every listed image.
    cfg.DATASETS.DROP_EMPTY_TEST_IMAGES = ()
    # Box arithmetic of the VOC AP: "continuous" (the dataset dicts' boxes as loaded) or
    # "detectron2_voc" (Detectron2's PascalVOCDetectionEvaluator, which the CLIP-the-Gap authors
    # report: 1-based predictions, ground truth as in the annotation files, inclusive pixels).
    cfg.TEST.AP_BOX_CONVENTION = "continuous"


def add_selection_config(cfg: CN) -> None:
    """``TEST.SELECTION_METRIC``: keep the best checkpoint by a metric of the periodic
    evaluation."""
    # "<test dataset>/<task>/<metric>", e.g. "diverse_weather_daytime_clear_test/bbox/AP50"
    # (the authors select on day-clear AP50). Saved as model_best.pth; "" = off.
    cfg.TEST.SELECTION_METRIC = ""


def add_classification_config(cfg: CN) -> None:
    """The CLIP image classifiers' shared keys (prompt tokens, input, DG benchmarks, epochs) and
    the engine's solver options."""
    cfg.MODEL.PROMPT = CN()
    # Number of learned context vectors (CoOp paper: 16; SPG: 4).
    cfg.MODEL.PROMPT.N_CTX = 4
    # Initialise the context from these words' token embeddings ("" = random, std 0.02); their
    # token count must equal N_CTX.
    cfg.MODEL.PROMPT.CTX_INIT = "a photo of a"
    # CoOp's class-specific context (CSC): one learned context per class instead of one shared.
    cfg.MODEL.PROMPT.CLASS_SPECIFIC_CONTEXT = False
    # Where the class name goes relative to the context: "end", "middle" or "front".
    cfg.MODEL.PROMPT.CLASS_TOKEN_POSITION = "end"
    # Hand-written prompt templates of the zero-shot classifier, one "{}" each.
    cfg.MODEL.PROMPT.TEMPLATES = ["a photo of a {}."]
    # CoCoOp meta-net hidden width = image feature dim // this ratio.
    cfg.MODEL.PROMPT.META_NET_RATIO = 16
    # Classification input: square side, and RandomResizedCrop's minimum area fraction.
    cfg.INPUT.CLS_SIZE = 224
    cfg.INPUT.CLS_MIN_SCALE = 0.08
    # Images per batch at test time (Detectron2 evaluates detection one image at a time).
    cfg.TEST.IMS_PER_BATCH = 1
    # Training skips (counts and logs) images that fail to decode instead of stopping.
    cfg.DATALOADER.SKIP_BAD_IMAGES = False
    # Domain-generalization benchmark that fills DATASETS.TRAIN/VAL/TEST when set:
    # a dataset key (pacs, vlcs, office_home, terra_incognita, domainnet, synthetic_domains),
    # the target (multi_source: held-out domain) or source (single_source) domain.
    cfg.DATASETS.DG_BENCHMARK = ""
    cfg.DATASETS.DG_DOMAIN = ""
    cfg.DATASETS.DG_PROTOCOL = "multi_source"
    # Validation sets (source domains' val splits) for model selection.
    cfg.DATASETS.VAL = ()
    # Schedules in epochs of DATASETS.TRAIN (0 = off; an epoch is floor(N / IMS_PER_BATCH)
    # iterations, as Dassl's drop-last loader): the Trainer sets SOLVER.MAX_ITER and
    # SOLVER.WARMUP_ITERS from these, and then reads TEST.EVAL_PERIOD and
    # SOLVER.CHECKPOINT_PERIOD in epochs too. SOLVER.LR_SCHEDULER_NAME "EpochWarmupCosineLR"
    # (domaingen/engine/schedules.py) is Dassl's schedule, stepped once per epoch.
    cfg.SOLVER.EPOCHS = 0
    # Autocast dtype of SOLVER.AMP.ENABLED (CUDA): "float16" (with loss scaling) or "bfloat16".
    cfg.SOLVER.AMP.PRECISION = "float16"
    # Speed options: channels-last convolution weights; torch.compile of the image tower.
    cfg.MODEL.CHANNELS_LAST = False
    cfg.MODEL.COMPILE = False
    cfg.SOLVER.WARMUP_EPOCHS = 0
    # "SGD" (Detectron2's, with SOLVER.MOMENTUM) or "Adam" (AD-CLIP's).
    cfg.SOLVER.OPTIMIZER = "SGD"


def add_domaingen_config(cfg: CN) -> CN:
    """Add every domaingen key to a Detectron2 config (in place) and return it: the shared keys
    and those of every registered method."""
    from domaingen.engine.registry import add_methods_config  # engine imports this module

    add_selection_config(cfg)
    add_detection_data_config(cfg)
    add_clip_config(cfg)
    add_text_classifier_config(cfg)
    add_classification_config(cfg)
    # True: every authors' switch of the config's method set to the authors' side (after the
    # config file; command-line overrides still win). The switches are listed with each method.
    cfg.REPRODUCE_AUTHORS = False
    add_methods_config(cfg)
    return cfg
