"""The prompt-learning baselines: zero-shot CLIP, CoOp and CoCoOp."""
import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from domaingen.clip import encode_prompts
from domaingen.modeling.clip_classifier import ClipImageClassifier
from domaingen.modeling.prompts import ContextPrompts


@META_ARCH_REGISTRY.register()
class ZeroShotCLIPClassifier(ClipImageClassifier):
    """CLIP with hand-written prompts (``MODEL.PROMPT.TEMPLATES``); nothing trains."""

    @configurable
    def __init__(self, *, templates, **kwargs):
        super().__init__(**kwargs)
        names = [c.replace("_", " ") for c in self.class_names]  # folder names: Alarm_Clock
        text = encode_prompts(kwargs["clip_model"], self.model_name, names, templates)
        self.register_buffer("text_features", text, persistent=False)

    @classmethod
    def from_config(cls, cfg):
        return {**super().from_config(cfg), "templates": list(cfg.MODEL.PROMPT.TEMPLATES)}

    def class_logits(self, image_features):
        return self.logit_scale * image_features @ self.text_features.t()


class _ContextClassifier(ClipImageClassifier):
    """Shared construction of the learned-context classifiers."""

    @configurable
    def __init__(self, *, n_ctx: int, ctx_init: str, class_token_position: str,
                 class_specific: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.prompts = ContextPrompts(kwargs["clip_model"], self.model_name, self.class_names,
                                      n_ctx, ctx_init, class_token_position, class_specific)

    @classmethod
    def from_config(cls, cfg):
        p = cfg.MODEL.PROMPT
        return {**super().from_config(cfg), "n_ctx": p.N_CTX, "ctx_init": p.CTX_INIT,
                "class_token_position": p.CLASS_TOKEN_POSITION,
                "class_specific": p.CLASS_SPECIFIC_CONTEXT}


@META_ARCH_REGISTRY.register()
class CoOpClassifier(_ContextClassifier):
    """CoOp: one learned context shared by all classes and images. In eval the class text
    features are encoded once per context value and reused across batches (``cache_text``)."""

    @configurable
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.cache_text = True
        self._text_cache = None  # (context version, text features)

    def class_text_features(self) -> torch.Tensor:
        ctx = self.prompts.ctx
        if self.training or not self.cache_text:
            return self.encode_context(self.prompts, ctx)
        key = (ctx._version, ctx.data_ptr(), ctx.device, self.truncate_text)
        if self._text_cache is None or self._text_cache[0] != key:
            with torch.no_grad():
                self._text_cache = (key, self.encode_context(self.prompts, ctx))
        return self._text_cache[1]

    def class_logits(self, image_features):
        return self.logit_scale * image_features @ self.class_text_features().t()


@META_ARCH_REGISTRY.register()
class CoCoOpClassifier(_ContextClassifier):
    """CoCoOp: the context is shifted per image by a meta-net of the image feature, so the text
    encoder runs for every (image, class) pair."""

    @configurable
    def __init__(self, *, meta_net_ratio: int = 16, **kwargs):
        if kwargs.get("class_specific"):
            raise ValueError("CoCoOp shifts one shared context per image: "
                             "MODEL.PROMPT.CLASS_SPECIFIC_CONTEXT must be False")
        super().__init__(**kwargs)
        dim = kwargs["clip_model"].visual.output_dim
        hidden = max(dim // meta_net_ratio, 1)
        width = self.prompts.ctx.shape[-1]
        self.meta_net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True),
                                      nn.Linear(hidden, width))

    @classmethod
    def from_config(cls, cfg):
        return {**super().from_config(cfg), "meta_net_ratio": cfg.MODEL.PROMPT.META_NET_RATIO}

    def class_logits(self, image_features):
        ctx = self.prompts.ctx + self.meta_net(image_features)[:, None]
        text = self.encode_context(self.prompts, ctx)  # [B, K, D]
        return self.logit_scale * torch.einsum("bd,bkd->bk", image_features, text)
