"""The CLIP-the-Gap authors' detector checkpoints (vidit09/domaingen) as domaingen state dicts.

Their ``ClipRCNNWithClipBackbone(WithOffsetGenTrainable)`` holds the whole OpenAI CLIP inside its
box predictor, reaches the visual tower through several aliases and carries modules it never
runs. The parts it uses map onto ``ClipRCNN`` / ``ClipGapRCNN`` one to one; the class text
embeddings and the bank's text directions, which their model recomputes from its frozen text
tower, are computed here from that same tower.
"""
from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from domaingen.clip import build_clip_model, encode_prompts
from domaingen.modeling.roi_heads import detector_class_names
from domaingen.utils.errors import InputError, load_torch_file


class AuthorsCheckpointError(InputError, ValueError):
    """A checkpoint that is not in the authors' layout or does not fit the config."""


TEXT_TOWER = "roi_heads.box_predictor.cls_score.model."
# Their name prefix -> ours. The visual tower is read from backbone.enc, one of its aliases.
RENAMES = (
    ("backbone.enc.layer1.", "backbone.res2."),
    ("backbone.enc.layer2.", "backbone.res3."),
    ("backbone.enc.layer3.", "backbone.res4."),
    ("backbone.enc.layer4.", "roi_heads.res5."),
    ("backbone.enc.attnpool.", "roi_heads.attnpool."),
    ("backbone.enc.", "backbone.stem."),  # conv1..3, bn1..3 (after the layers above)
    ("roi_heads.box_predictor.bbox_pred.", "roi_heads.box_predictor.bbox_pred."),
    ("proposal_generator.rpn_head.", "proposal_generator.rpn_head."),
    ("offsets", "augmentation_bank.offsets"),
)
# What their model carries but never runs, or holds twice under other names.
UNUSED = (
    "backbone.backbone_unchanged.",  # the first 19 blocks of layer3 again
    "backbone.proj.", "backbone.global_proj.",  # Linear(512, 512) layers never called
    "roi_heads.res5.",  # Detectron2's own res5 head; their ROI head runs CLIP's layer4
    "roi_heads.clip_im_predictor.",  # the box predictor's classifier again
    "roi_heads.box_predictor.cls_score.frozen_clip_model.",  # a deep copy of CLIP, unused
    "roi_heads.box_predictor.cls_score.visual_enc.",  # the visual tower again
    TEXT_TOWER + "visual.",  # the visual tower again
    "roi_heads.box_predictor.cls_score.projection.",  # only for embeddings wider than 512
    "roi_heads.box_predictor.cls_score.projection_global.",
    "pixel_mean", "pixel_std",
)


def read_authors_checkpoint(path: str, allow_pickle: bool = False) -> Dict[str, torch.Tensor]:
    """The model state dict of a checkpoint saved by the authors' Detectron2 trainer."""
    try:
        data = load_torch_file(path, AuthorsCheckpointError, "checkpoint",
                               allow_pickle=allow_pickle)
    except AuthorsCheckpointError as e:
        if "needs arbitrary unpickling" not in str(e):
            raise
        raise AuthorsCheckpointError(f"{e} If you trust the file, rerun with --allow-pickle "
                                     f"to unpickle it fully.") from e.__cause__
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AuthorsCheckpointError(f"{path} holds no model state dict (a mapping from names "
                                     f"to tensors, alone or under 'model')")
    if not any(k.startswith("backbone.enc.") for k in state):
        raise AuthorsCheckpointError(
            f"{path} is not a CLIP-the-Gap authors' checkpoint: it has no backbone.enc.* "
            "(their CLIP visual tower); keys start with "
            f"{sorted({k.split('.')[0] for k in state})}")
    return state


def _rename(key: str) -> str:
    for theirs, ours in RENAMES:
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return ""


def _text_clip(state: Dict[str, torch.Tensor], cfg):
    """A CLIP of ``MODEL.CLIP.NAME`` holding their text tower (OpenAI's, so QuickGELU unless
    ``MODEL.CLIP.QUICK_GELU`` says otherwise)."""
    quick_gelu = "true" if cfg.MODEL.CLIP.QUICK_GELU == "auto" else cfg.MODEL.CLIP.QUICK_GELU
    clip = build_clip_model(cfg.MODEL.CLIP.NAME, "", quick_gelu)
    text = {k[len(TEXT_TOWER):]: v for k, v in state.items()
            if k.startswith(TEXT_TOWER) and not k.startswith(TEXT_TOWER + "visual.")}
    expected = {k for k in clip.state_dict() if not k.startswith("visual.")}
    if set(text) != expected:
        missing, extra = sorted(expected - set(text)), sorted(set(text) - expected)
        raise AuthorsCheckpointError(
            f"the checkpoint's CLIP text tower ({TEXT_TOWER}*) does not match "
            f"MODEL.CLIP.NAME={cfg.MODEL.CLIP.NAME!r}: missing {missing[:5]}, unexpected "
            f"{extra[:5]}")
    clip.load_state_dict({**clip.state_dict(), **text})
    return clip


def convert_authors_state(state: Dict[str, torch.Tensor], cfg,
                          target: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], list]:
    """Their state dict -> ours for the model ``cfg`` builds (``target``: its state dict).
    Returns the state and the names of the tensors left out as unused.

    Raises AuthorsCheckpointError naming the keys it cannot place, the keys of ours it cannot
    fill and the shapes that differ.
    """
    target_keys = set(target)
    has_bank = "augmentation_bank.offsets" in target_keys
    if "offsets" in state and not has_bank:
        raise AuthorsCheckpointError(
            "the checkpoint holds semantic augmentations ('offsets') but the config builds "
            f"{cfg.MODEL.META_ARCHITECTURE}: use a ClipGapRCNN config")
    if has_bank and "offsets" not in state:
        raise AuthorsCheckpointError(
            "the checkpoint has no semantic augmentations ('offsets'): it is their baseline "
            "detector; convert it with a ClipRCNN config")
    converted, unused, unplaced = {}, [], []
    for key, value in state.items():
        ours = _rename(key)
        if ours in target_keys:
            converted[ours] = value
        elif ours.endswith(".num_batches_tracked") or key.startswith(UNUSED) or \
                key.startswith(TEXT_TOWER):
            unused.append(key)  # frozen BatchNorm keeps no step count; the rest is unused
        else:
            unplaced.append(key)
    if unplaced:
        raise AuthorsCheckpointError(
            f"{len(unplaced)} tensors of the checkpoint have no place in "
            f"{cfg.MODEL.META_ARCHITECTURE}: {sorted(unplaced)[:10]}")
    clip = _text_clip(state, cfg)
    converted["roi_heads.box_predictor.text_embeddings"] = encode_prompts(
        clip, cfg.MODEL.CLIP.NAME, detector_class_names(cfg), cfg.MODEL.TEXT_CLASSIFIER.TEMPLATES)
    if has_bank:
        c = cfg.MODEL.CLIP_GAP
        embeddings = encode_prompts(clip, cfg.MODEL.CLIP.NAME, [c.SOURCE_PROMPT, *c.TARGET_PROMPTS],
                                    ["{}"])
        converted["augmentation_bank.text_directions"] = F.normalize(
            embeddings[1:] - embeddings[:1], dim=-1)
        converted["augmentation_bank.optimized_iters"] = torch.tensor(max(c.OPT_ITERS, 1))
    missing = sorted(target_keys - set(converted))
    if missing:
        raise AuthorsCheckpointError(
            f"the checkpoint lacks {len(missing)} tensors that {cfg.MODEL.META_ARCHITECTURE} "
            f"needs: {missing[:10]}")
    shapes = [f"{k}: {tuple(v.shape)} (config: {tuple(target[k].shape)})"
              for k, v in sorted(converted.items()) if v.shape != target[k].shape]
    if shapes:
        raise AuthorsCheckpointError(
            f"{len(shapes)} tensors do not fit MODEL.CLIP.NAME={cfg.MODEL.CLIP.NAME!r} and the "
            f"config's classes/prompts: {shapes[:5]}")
    return converted, unused
