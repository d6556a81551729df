"""AD-CLIP (Singha et al., ICCV-W 2023): unsupervised domain adaptation in CLIP's prompt space."""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY

from domaingen.modeling.clip_classifier import ClipImageClassifier

from .features import MultiScaleStatistics
from .losses import batch_normalized_entropy, mean_entropy, text_distribution_kl
from .prompt_learner import ADCLIPPromptLearner

LOSS_NAMES = ("loss_ce", "loss_style_mapping", "loss_entropy", "loss_kl")


@META_ARCH_REGISTRY.register()
class ADCLIPClassifier(ClipImageClassifier):
    """AD-CLIP: prompts generated from multi-scale statistics of the frozen image tower.

    Training takes ``{"source": [B labelled dicts], "target": [B unlabelled dicts]}`` (the paired
    loader, :func:`~domaingen.methods.adclip.paired_loader.build_paired_train_loader`). The prompt
    of pair b and class k is ``[SOS] + domain tokens of source image b + domain tokens of target
    image b +
    image tokens + class``; source prompts carry the source image's image tokens, target prompts
    the target image's. Losses (weighted by ``MODEL.ADCLIP.*_WEIGHT``): cross-entropy on the
    source, MSE between the source's style-mapping and domain tokens, entropy of the target
    predictions, and KL between the class distributions of the source and target text features.

    Evaluation takes one batch of images (the authors call ``model(x, x)``): each test image's
    own domain tokens fill both the source and the target slots, with its own image tokens.
    That is what the authors' two-image call computes, without encoding the image twice.

    ``untrained_first_layers_seed`` (not None) applies to ResNet towers only, as in the authors'
    code: their RN50 trainer never trains its projectors' first layers, their ViT trainers do.
    """

    @configurable
    def __init__(self, *, style_hidden: int = 256, style_mapping_hidden: int = 384,
                 n_image_tokens: int = 4, shared_image_mixer: bool = True,
                 untrained_first_layers_seed: Optional[int] = None,
                 loss_weights: Dict[str, float], authors_entropy: bool = False,
                 truncate_text: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.multi_scale = MultiScaleStatistics(self.visual)
        if self.multi_scale.family != "resnet":
            untrained_first_layers_seed = None
        self.prompt_learner = ADCLIPPromptLearner(
            kwargs["clip_model"], self.model_name, self.class_names, self.multi_scale.dims,
            style_hidden, style_mapping_hidden, n_image_tokens, shared_image_mixer,
            untrained_first_layers_seed)
        self.loss_weights = dict(loss_weights)
        self.entropy = batch_normalized_entropy if authors_entropy else mean_entropy
        self.truncate_text = truncate_text

    @classmethod
    def from_config(cls, cfg):
        a = cfg.MODEL.ADCLIP
        return {
            **super().from_config(cfg),
            "style_hidden": a.STYLE_HIDDEN_DIM,
            "style_mapping_hidden": a.STYLE_MAPPING_HIDDEN_DIM,
            "n_image_tokens": a.IMAGE_TOKENS,
            "shared_image_mixer": a.SHARED_IMAGE_MIXER,
            "untrained_first_layers_seed": (a.UNTRAINED_LAYERS_SEED
                                            if a.AUTHORS_UNTRAINED_FIRST_LAYERS else None),
            "loss_weights": dict(zip(LOSS_NAMES, (a.CE_WEIGHT, a.STYLE_MAPPING_WEIGHT,
                                                  a.ENTROPY_WEIGHT, a.KL_WEIGHT))),
            "authors_entropy": a.AUTHORS_ENTROPY,
            "truncate_text": a.TRUNCATE_TEXT,
        }

    def _encode_images(self, batched_inputs: List[dict]):
        """Normalised image embeddings [N, D] and per-layer statistics (one frozen forward)."""
        images = self.normalize(torch.stack([x["image"] for x in batched_inputs]))
        embedding, mus, sigmas = self.multi_scale(images)
        return F.normalize(embedding.float(), dim=-1), mus, sigmas

    def _logits_and_text(self, image_features, source_domain, target_domain, image_tokens):
        ctx = self.prompt_learner.context(source_domain, target_domain, image_tokens)
        text = self.encode_context(self.prompt_learner.tokens, ctx)  # [B, K, D]
        logits = self.logit_scale * torch.einsum("bd,bkd->bk", image_features, text)
        return logits, text

    def forward(self, batched_inputs):
        if not self.training:
            features, mus, sigmas = self._encode_images(batched_inputs)
            domain, image_tokens = self.prompt_learner.domain_and_image_tokens(mus, sigmas)
            logits, _ = self._logits_and_text(features, domain, domain, image_tokens)
            return [{"logits": row} for row in logits]
        source, target = batched_inputs["source"], batched_inputs["target"]
        if len(source) != len(target):
            raise ValueError(f"AD-CLIP pairs source and target images one to one: got "
                             f"{len(source)} source and {len(target)} target images")
        b = len(source)
        features, mus, sigmas = self._encode_images(source + target)
        domain, image_tokens = self.prompt_learner.domain_and_image_tokens(mus, sigmas)
        pair_domains = (domain[:b].repeat(2, 1, 1), domain[b:].repeat(2, 1, 1))
        logits, text = self._logits_and_text(features, *pair_domains, image_tokens)
        mapped = self.prompt_learner.style_mapping([m[:b] for m in mus], [s[:b] for s in sigmas])
        labels = torch.as_tensor([x["label"] for x in source], device=logits.device)
        losses = {
            "loss_ce": F.cross_entropy(logits[:b], labels),
            "loss_style_mapping": F.mse_loss(mapped.float(), domain[:b].float()),
            "loss_entropy": self.entropy(logits[b:].float()),
            "loss_kl": text_distribution_kl(text[:b], text[b:]),
        }
        return {k: self.loss_weights[k] * v for k, v in losses.items()}
