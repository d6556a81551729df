"""SPG's config keys."""
from detectron2.config import CfgNode as CN


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
