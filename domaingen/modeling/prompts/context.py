"""Prompts (CoOp, CoCoOp, AD-CLIP) assembled as token embeddings for the text encoder."""
from typing import Sequence

import torch
from torch import nn

from domaingen.clip import get_tokenizer

POSITIONS = ("end", "middle", "front")


class PromptTokens(nn.Module):
    """Fixed token embeddings of prompts ``[SOS] <n_ctx context slots> <class name> . [EOS]``.

    The fixed token embeddings (start token, class names, full stop, end token) are computed
    once and kept as buffers, truncated to the longest prompt. :meth:`assemble` splices a context
    (``[n_ctx, W]`` shared, or ``[B, n_ctx, W]`` per image) in and returns token embeddings
    (``[K, L, W]`` or ``[B, K, L, W]``) whose end-of-text positions are :attr:`eot_positions`.
    With ``class_token_position`` "front" or "middle" the class name moves before or into the
    context (CoOp's variants); the end-of-text position does not change. The context comes from
    the caller (AD-CLIP generates it from image features); :class:`ContextPrompts` learns it.
    """

    def __init__(self, clip_model: nn.Module, model_name: str, class_names: Sequence[str],
                 n_ctx: int, class_token_position: str = "end"):
        super().__init__()
        if class_token_position not in POSITIONS:
            raise ValueError(f"MODEL.PROMPT.CLASS_TOKEN_POSITION must be one of {POSITIONS}, "
                             f"got {class_token_position!r}")
        tokenizer = get_tokenizer(model_name)
        embedding = clip_model.token_embedding
        device = embedding.weight.device
        names = [c.replace("_", " ") for c in class_names]
        placeholder = " ".join(["X"] * n_ctx)
        ids = tokenizer([f"{placeholder} {name}." for name in names]).to(device)
        eot = ids.argmax(dim=-1)
        length = int(eot.max()) + 1
        with torch.no_grad():
            tokens = embedding(ids[:, :length]).float()
        self.register_buffer("token_prefix", tokens[:, :1].clone(), persistent=False)
        self.register_buffer("token_suffix", tokens[:, 1 + n_ctx:].clone(), persistent=False)
        self.register_buffer("eot_positions", eot, persistent=False)
        name_lens = [len(tokenizer.encode(name)) for name in names]
        order = torch.stack([self._order(n_ctx, n, length, class_token_position)
                             for n in name_lens])
        self.register_buffer("order", order.to(device), persistent=False)
        self.n_ctx = n_ctx
        self.reorder = class_token_position != "end"
        self.class_specific = False

    @staticmethod
    def _order(n_ctx: int, name_len: int, length: int, position: str) -> torch.Tensor:
        """Token order turning the "end" layout [SOS, ctx, name, rest] into ``position``."""
        ctx = list(range(1, 1 + n_ctx))
        name = list(range(1 + n_ctx, 1 + n_ctx + name_len))
        rest = list(range(1 + n_ctx + name_len, length))
        half = n_ctx // 2
        middle = {"end": ctx + name, "front": name + ctx,
                  "middle": ctx[:half] + name + ctx[half:]}[position]
        return torch.tensor([0] + middle + rest)

    @property
    def num_classes(self) -> int:
        return self.token_prefix.shape[0]

    @property
    def prefix_shared(self) -> bool:
        """Whether all classes' prompts start with the same start token + context."""
        return not self.reorder and not self.class_specific

    def split(self, ctx: torch.Tensor):
        """For contexts ``ctx`` [B, n_ctx, W]: the prompts' shared prefixes [B, 1 + n_ctx, W]
        (start token + context), the class suffixes [K, S, W] (class name, full stop, end of
        text, then padding) and the suffix lengths [K] up to the end-of-text token."""
        start = self.token_prefix[0].expand(ctx.shape[0], 1, -1)
        prefix = torch.cat([start, ctx.to(start.dtype)], dim=1)
        return prefix, self.token_suffix, self.eot_positions - self.n_ctx

    def assemble(self, ctx: torch.Tensor) -> torch.Tensor:
        """Token embeddings for every class with context ``ctx``: [n, W] shared, [B, n, W] per
        image, or [K, n, W] per class (class-specific context)."""
        k = self.num_classes
        if self.class_specific:
            lead = ctx.shape[:-3]
        else:
            lead = ctx.shape[:-2]
            ctx = ctx.unsqueeze(-3).expand(*lead, k, *ctx.shape[-2:])
        prefix = self.token_prefix.expand(*lead, *self.token_prefix.shape)
        suffix = self.token_suffix.expand(*lead, *self.token_suffix.shape)
        tokens = torch.cat([prefix, ctx.to(prefix.dtype), suffix], dim=-2)
        if not self.reorder:
            return tokens
        index = self.order.expand(*lead, *self.order.shape)[..., None].expand(tokens.shape)
        return tokens.gather(-2, index)


class ContextPrompts(PromptTokens):
    """Prompts ``[SOS] ctx_1..ctx_n <class name> . [EOS]`` with a learned context :attr:`ctx`
    (CoOp, CoCoOp): shared by all classes, or one per class (``class_specific``)."""

    def __init__(self, clip_model: nn.Module, model_name: str, class_names: Sequence[str],
                 n_ctx: int, ctx_init: str = "", class_token_position: str = "end",
                 class_specific: bool = False):
        super().__init__(clip_model, model_name, class_names, n_ctx, class_token_position)
        embedding = clip_model.token_embedding
        if ctx_init:
            tokenizer = get_tokenizer(model_name)
            n_init = len(tokenizer.encode(ctx_init))
            if n_init != n_ctx:
                raise ValueError(f"MODEL.PROMPT.CTX_INIT {ctx_init!r} has {n_init} tokens but "
                                 f"MODEL.PROMPT.N_CTX is {n_ctx}")
            with torch.no_grad():
                ids = tokenizer([ctx_init]).to(embedding.weight.device)
                ctx = embedding(ids)[0, 1:1 + n_ctx].clone()
        else:
            generator = torch.Generator().manual_seed(0)
            ctx = torch.randn(n_ctx, embedding.embedding_dim, generator=generator) * 0.02
        if class_specific:  # CoOp's class-specific context (CSC): one context per class
            ctx = ctx.expand(len(class_names), *ctx.shape).clone()
        self.ctx = nn.Parameter(ctx.float())
        self.class_specific = class_specific
