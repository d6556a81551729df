"""The base of the CLIP image classifiers (ZS-CLIP, CoOp, CoCoOp, SPG, AD-CLIP).

They follow GeneralizedRCNN's contract: ``forward(list[dict])`` takes mapper outputs
(``{"image": CHW uint8 in INPUT.FORMAT, "label", "domain"}``) and returns ``{"loss_cls"}`` in
training and ``[{"logits"}]`` per image in eval. The CLIP towers are frozen (eval mode, no
grad) and left out of checkpoints, which hold only what trains; they are rebuilt from
``MODEL.CLIP``.
"""
import torch
import torch.nn.functional as F
from detectron2.config import configurable
from torch import nn

from domaingen.clip import ClipTextEncoder, build_clip_from_cfg, image_input_dtype
from domaingen.data.metadata import class_names_from_cfg

FROZEN_PREFIXES = ("visual.", "text_encoder.")


def _drop_frozen_clip(module, state_dict, prefix, local_metadata):
    for key in [k for k in state_dict if k[len(prefix):].startswith(FROZEN_PREFIXES)]:
        del state_dict[key]


class ClipImageClassifier(nn.Module):
    """Frozen CLIP image and text towers; subclasses define :meth:`class_logits`."""

    @configurable
    def __init__(self, *, clip_model: nn.Module, class_names, model_name: str, pixel_mean,
                 pixel_std, input_format: str = "BGR", text_checkpoint: bool = False):
        super().__init__()
        self.model_name = model_name
        self.class_names = list(class_names)
        self.input_format = input_format
        self.visual = clip_model.visual
        self.text_encoder = ClipTextEncoder(clip_model, checkpoint=text_checkpoint)
        for p in list(self.visual.parameters()) + list(self.text_encoder.parameters()):
            p.requires_grad_(False)
        self.register_buffer("logit_scale", clip_model.logit_scale.detach().exp().clone(),
                             persistent=False)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self._register_state_dict_hook(_drop_frozen_clip)
        self.truncate_text = True  # False: the naive 77-token text path (benchmarks, tests)

    @classmethod
    def from_config(cls, cfg):
        return {
            "clip_model": build_clip_from_cfg(cfg, precision=cfg.MODEL.CLIP.PRECISION),
            "class_names": class_names_from_cfg(cfg),
            "model_name": cfg.MODEL.CLIP.NAME,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "input_format": cfg.INPUT.FORMAT,
            "text_checkpoint": cfg.MODEL.CLIP.TEXT_CHECKPOINT,
        }

    @property
    def device(self):
        return self.pixel_mean.device

    def train(self, mode: bool = True):
        super().train(mode)
        self.visual.eval()
        self.text_encoder.eval()
        return self

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in ``INPUT.FORMAT`` (0-255) -> CLIP-normalised RGB."""
        images = images.to(self.device, torch.float32)
        if self.input_format == "BGR":
            images = images.flip(-3)
        return (images - self.pixel_mean) / self.pixel_std

    @torch.no_grad()
    def image_features(self, batched_inputs) -> torch.Tensor:
        """L2-normalised fp32 CLIP image embeddings [B, D] (no grad: the tower is frozen); the
        normalised images enter the tower in its own precision (``MODEL.CLIP.PRECISION``)."""
        images = self.normalize(torch.stack([x["image"] for x in batched_inputs]))
        return F.normalize(self.visual(images.to(image_input_dtype(self.visual))).float(), dim=-1)

    def encode_tokens(self, tokens: torch.Tensor, eot_positions: torch.Tensor) -> torch.Tensor:
        """Normalised text features of prompt embeddings [..., K, L, W] whose end-of-text
        positions are ``eot_positions`` [K] -> [..., K, D], in one text-encoder call (the
        77-token reference path when :attr:`truncate_text` is False)."""
        lead = tokens.shape[:-2]
        eot = eot_positions.repeat(tokens[..., 0, 0].numel() // tokens.shape[-3])
        feats = self.text_encoder(token_embeddings=tokens.reshape(-1, *tokens.shape[-2:]),
                                  eot_positions=eot, truncate=self.truncate_text)
        return F.normalize(feats.float(), dim=-1).view(*lead, -1)

    def encode_context(self, prompts, ctx: torch.Tensor) -> torch.Tensor:
        """Normalised text features of ``prompts`` (a PromptTokens) with context ``ctx``:
        [n, W] -> [K, D], [B, n, W] -> [B, K, D]. Where all classes share the start token +
        context and :attr:`truncate_text` is on, each context is encoded once for all classes
        (``ClipTextEncoder.encode_shared_prefix``); else every prompt whole (``encode_tokens``)."""
        if not (self.truncate_text and prompts.prefix_shared):
            return self.encode_tokens(prompts.assemble(ctx), prompts.eot_positions)
        single = ctx.dim() == 2
        feats = self.text_encoder.encode_shared_prefix(*prompts.split(ctx[None] if single
                                                                      else ctx))
        feats = F.normalize(feats.float(), dim=-1)
        return feats[0] if single else feats

    def class_logits(self, image_features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, batched_inputs):
        logits = self.class_logits(self.image_features(batched_inputs))
        if self.training:
            labels = torch.as_tensor([x["label"] for x in batched_inputs], device=logits.device)
            return {"loss_cls": F.cross_entropy(logits, labels)}
        return [{"logits": row} for row in logits]
