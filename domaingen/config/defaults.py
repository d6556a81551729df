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
    # classes and large batches fit in memory (README "Performance").
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
    """``TEST.SELECTION_METRIC``: keep the best checkpoint by a metric of the periodic evaluation."""
    # "<test dataset>/<task>/<metric>", e.g. "diverse_weather_daytime_clear_test/bbox/AP50"
    # (the authors select on day-clear AP50). Saved as model_best.pth; "" = off.
    cfg.TEST.SELECTION_METRIC = ""


def add_classification_config(cfg: CN) -> None:
    """CLIP image classifiers (ZS-CLIP, CoOp, CoCoOp; later AD-CLIP, SPG) and their data."""
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


def add_spg_config(cfg: CN) -> None:
    """``MODEL.SPG``: SPG's conditional GAN (stage II). Defaults are what the authors ran."""
    cfg.MODEL.SPG = CN()
    # Stage I domain prompt label files, one per source domain (tools/spg_pipeline.py fills it).
    cfg.MODEL.SPG.DOMAIN_PROMPTS = []
    cfg.MODEL.SPG.LATENT_DIM = 100
    # Generator BatchNorm eps: the authors' BatchNorm1d(out, 0.8) sets eps (not momentum) to 0.8.
    cfg.MODEL.SPG.BN_EPS = 0.8
    cfg.MODEL.SPG.DROPOUT = 0.4
    # The SPG authors' released stage I labels instead (a directory in their layout:
    # <Dataset>_CoOp_<letter>.pt, e.g. prompt_labels/PACS/ViT-B16/seed_1); "" = none.
    cfg.MODEL.SPG.AUTHORS_DOMAIN_PROMPTS = ""
    # Evaluation noise seeded per image from this and its file name; -1 = unseeded (drawn from
    # torch's global generator, as the authors).
    cfg.MODEL.SPG.EVAL_NOISE_SEED = 0
    # Authors' quirk: at test time the first image's generated prompt serves the whole batch
    # (their test batch is 1, where it changes nothing). False = every image its own prompt.
    cfg.MODEL.SPG.SHARE_FIRST_PROMPT = False
    # Per-parameter gradient-norm limits (the authors' command-line defaults, which overrode
    # their YAML), applied to a gradient whose norm exceeds its limit: generator weights (Linear
    # and BatchNorm) / other biases / the biases of the last BatchNorm and the output layer (the
    # layers their name test "9.bias", "11.bias" picks); discriminator weights / biases / first
    # and last layer.
    cfg.MODEL.SPG.CLIP_G_WEIGHT = 5e-3
    cfg.MODEL.SPG.CLIP_G_BIAS = 5e-8
    cfg.MODEL.SPG.CLIP_G_LAST_BIAS = 1.0
    cfg.MODEL.SPG.CLIP_D_WEIGHT = 5e-2
    cfg.MODEL.SPG.CLIP_D_BIAS = 5e-1
    cfg.MODEL.SPG.CLIP_D_FIRST_LAST = 5.0


def add_adclip_config(cfg: CN) -> None:
    """``MODEL.ADCLIP`` (AD-CLIP), its unlabelled target data and the optimizer choice."""
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
    # "SGD" (Detectron2's, with SOLVER.MOMENTUM) or "Adam" (AD-CLIP's).
    cfg.SOLVER.OPTIMIZER = "SGD"


def add_domaingen_config(cfg: CN) -> CN:
    """Add every domaingen key to a Detectron2 config (in place) and return it."""
    add_selection_config(cfg)
    add_detection_data_config(cfg)
    add_clip_config(cfg)
    add_text_classifier_config(cfg)
    add_clip_gap_config(cfg)
    add_classification_config(cfg)
    add_spg_config(cfg)
    add_adclip_config(cfg)
    return cfg
