"""SPG (soft prompt generation): a generator writes one prompt context per image."""
import zlib
from typing import Dict, List

import torch
from detectron2.config import configurable
from detectron2.data import MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY

from domaingen.modeling.clip_classifier import ClipImageClassifier
from domaingen.modeling.prompts import PromptTokens

from .authors_prompts import load_authors_domain_prompts
from .domain_prompts import load_domain_prompts
from .networks import PromptDiscriminator, PromptGenerator


@META_ARCH_REGISTRY.register()
class SPGClassifier(ClipImageClassifier):
    """SPG stage II: a conditional GAN whose generator maps (noise, CLIP image embedding) to a
    soft prompt, trained to imitate the stage I prompt of the image's own domain.

    Training goes through the GAN run step (:class:`~domaingen.methods.spg.SPGTrainer`), which
    uses :attr:`generator`, :attr:`discriminator`, :meth:`domain_prompt_labels` and
    :meth:`sample_noise`. In eval, every image gets its own generated prompt and the class text
    features of all images x classes come from the text encoder's shared-prefix path.
    The evaluation noise of an image is seeded by ``eval_noise_seed`` and its file name, so
    results do not depend on batch size or process count (``eval_noise_seed < 0``: unseeded).
    ``share_first_prompt`` reproduces the authors' test loop, which gives every image of a batch
    the first image's prompt.
    """

    @configurable
    def __init__(self, *, domain_prompts: Dict[str, torch.Tensor], n_ctx: int = 4,
                 latent_dim: int = 100, bn_eps: float = 0.8, dropout: float = 0.4,
                 eval_noise_seed: int = 0, share_first_prompt: bool = False, **kwargs):
        super().__init__(**kwargs)
        clip_model = kwargs["clip_model"]
        feat_dim = clip_model.visual.output_dim
        width = self.text_encoder.width
        self.prompts = PromptTokens(clip_model, self.model_name, self.class_names, n_ctx)
        self.generator = PromptGenerator(feat_dim, n_ctx, width, latent_dim, bn_eps)
        self.discriminator = PromptDiscriminator(n_ctx * width, feat_dim, dropout)
        self.domain_names: List[str] = sorted(domain_prompts)
        labels = [domain_prompts[d] for d in self.domain_names]
        self.register_buffer("domain_prompts", torch.stack(labels) if labels
                             else torch.zeros(0, n_ctx, width), persistent=False)
        self.eval_noise_seed = eval_noise_seed
        self.share_first_prompt = share_first_prompt

    @classmethod
    def from_config(cls, cfg):
        args = super().from_config(cfg)
        s = cfg.MODEL.SPG
        metas = [MetadataCatalog.get(name) for name in cfg.DATASETS.TRAIN]
        domains = [m.get("domain", m.name) for m in metas]
        ctx_shape = (cfg.MODEL.PROMPT.N_CTX, args["clip_model"].token_embedding.embedding_dim)
        if s.DOMAIN_PROMPTS and s.AUTHORS_DOMAIN_PROMPTS:
            raise ValueError("set MODEL.SPG.DOMAIN_PROMPTS (our stage I labels) or "
                             "MODEL.SPG.AUTHORS_DOMAIN_PROMPTS (the authors' folder), not both")
        # Evaluation needs only the generator; training needs a label for every source domain.
        if s.AUTHORS_DOMAIN_PROMPTS:
            sources = [(m.get("dataset", ""), d) for m, d in zip(metas, domains)]
            prompts = load_authors_domain_prompts(s.AUTHORS_DOMAIN_PROMPTS, sources, ctx_shape,
                                                  cfg.MODEL.CLIP.NAME)
        elif s.DOMAIN_PROMPTS:
            prompts = load_domain_prompts(s.DOMAIN_PROMPTS, cfg.MODEL.CLIP.NAME,
                                          args["class_names"], ctx_shape, domains)
        else:
            prompts = {}
        return {**args, "n_ctx": cfg.MODEL.PROMPT.N_CTX, "domain_prompts": prompts,
                "latent_dim": s.LATENT_DIM, "bn_eps": s.BN_EPS, "dropout": s.DROPOUT,
                "eval_noise_seed": s.EVAL_NOISE_SEED, "share_first_prompt": s.SHARE_FIRST_PROMPT}

    def domain_prompt_labels(self, batched_inputs) -> torch.Tensor:
        """The stage I prompt of each image's domain, [B, n_ctx, width]."""
        try:
            index = [self.domain_names.index(x["domain"]) for x in batched_inputs]
        except ValueError:
            unknown = sorted({x["domain"] for x in batched_inputs} - set(self.domain_names))
            raise ValueError(f"no domain prompt label for domain(s) {unknown} (labels: "
                             f"{self.domain_names}); set MODEL.SPG.DOMAIN_PROMPTS or "
                             f"MODEL.SPG.AUTHORS_DOMAIN_PROMPTS") from None
        return self.domain_prompts[torch.as_tensor(index, device=self.device)]

    def sample_noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.generator.latent_dim, device=self.device)

    def eval_noise(self, batched_inputs) -> torch.Tensor:
        if self.eval_noise_seed < 0:
            return self.sample_noise(len(batched_inputs))
        rows = []
        for x in batched_inputs:
            key = str(x.get("file_name", x.get("image_id", ""))).encode()
            g = torch.Generator().manual_seed(self.eval_noise_seed * 1_000_003 + zlib.crc32(key))
            rows.append(torch.randn(self.generator.latent_dim, generator=g))
        return torch.stack(rows).to(self.device)

    def logits_from_prompts(self, image_features: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """Logits [B, K] of images [B, D] under their own prompt contexts [B, n_ctx, width]."""
        text = self.encode_context(self.prompts, ctx)  # [B, K, D]
        return self.logit_scale * torch.einsum("bd,bkd->bk", image_features, text)

    def forward(self, batched_inputs):
        if self.training:
            raise RuntimeError("SPGClassifier trains through the GAN run step the Trainer builds "
                               "for it; call it in eval mode for predictions")
        features = self.image_features(batched_inputs)
        ctx = self.generator(self.eval_noise(batched_inputs), features)
        if self.share_first_prompt:  # the authors' test loop: the first prompt for all
            text = self.encode_context(self.prompts, ctx[0])
            logits = self.logit_scale * features @ text.t()
        else:
            logits = self.logits_from_prompts(features, ctx)
        return [{"logits": row} for row in logits]
