"""The only place in domaingen that talks to open_clip."""
from .attention_pool import MeanTokenAttentionPool, clip_attention_pool
from .models import (
    CLIP_MEAN,
    CLIP_STD,
    build_clip_from_cfg,
    build_clip_model,
    image_input_dtype,
    one_clip_per_model,
    register_model_configs,
)
from .text import ClipTextEncoder, encode_prompts, get_tokenizer
from .weights import ClipWeightsError

__all__ = [
    "CLIP_MEAN", "CLIP_STD", "ClipTextEncoder", "ClipWeightsError", "MeanTokenAttentionPool",
    "build_clip_from_cfg", "build_clip_model", "clip_attention_pool", "encode_prompts",
    "get_tokenizer", "image_input_dtype", "one_clip_per_model", "register_model_configs",
]
