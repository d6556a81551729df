"""CLIP text side: tokenizer, a text encoder (end-of-text-truncated, and a shared-prefix path for
per-image contexts), fixed-prompt embeddings."""
import functools
from typing import Optional, Sequence, Tuple

import open_clip
import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock
from torch import nn
from torch.utils.checkpoint import checkpoint

from . import onednn
from .models import register_model_configs


def get_tokenizer(name: str):
    """open_clip's tokenizer for model ``name``: ``tokenizer(list[str]) -> LongTensor[N, 77]``."""
    register_model_configs()
    return open_clip.get_tokenizer(name)


class ClipTextEncoder(nn.Module):
    """The text tower of a CLIP model, run only up to the longest end-of-text position.

    The causal attention mask makes the end-of-text output depend only on earlier tokens, so
    truncating the batch to ``max(eot) + 1`` tokens gives open_clip's ``encode_text`` exactly
    while costing a fraction of the 77-token pass. It accepts token ids, or token *embeddings*
    (with learned context vectors spliced in) together with the end-of-text positions.
    The modules are shared with the CLIP model it was built from, not copied. With
    ``checkpoint``, a pass that needs gradients keeps only each chunk's input and recomputes
    the chunk's activations in backward.
    """

    # On the CPU, sequences go through the transformer in chunks of this many: activations
    # then stay cache-sized, and the cost per prompt does not grow with the number of prompts.
    cpu_chunk = 256

    def __init__(self, clip_model: nn.Module, checkpoint: bool = False):
        super().__init__()
        self.checkpoint = checkpoint
        if getattr(clip_model, "text_pool_type", "argmax") != "argmax":
            raise ValueError("ClipTextEncoder supports CLIP text towers pooled at the "
                             "end-of-text (argmax) token only.")
        self.token_embedding = clip_model.token_embedding
        self.positional_embedding = clip_model.positional_embedding
        self.transformer = clip_model.transformer
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.register_buffer("attn_mask", clip_model.attn_mask, persistent=False)

    @property
    def width(self) -> int:
        return self.token_embedding.embedding_dim

    @staticmethod
    def eot_positions(token_ids: torch.Tensor) -> torch.Tensor:
        """The end-of-text token has the largest id in CLIP's vocabulary."""
        return token_ids.argmax(dim=-1)

    def forward(self, token_ids: Optional[torch.Tensor] = None, *,
                token_embeddings: Optional[torch.Tensor] = None,
                eot_positions: Optional[torch.Tensor] = None,
                truncate: bool = True) -> torch.Tensor:
        """Encode ``token_ids`` [N, L], or ``token_embeddings`` [N, L, W] with ``eot_positions``
        [N]; returns the (unnormalised) text features [N, D]. ``truncate=False`` is the naive
        reference path: the sequence padded (with the padding token) to the full context length."""
        if token_embeddings is None:
            if token_ids is None:
                raise ValueError("ClipTextEncoder needs token_ids or token_embeddings")
            token_embeddings = self.token_embedding(token_ids)
            eot_positions = self.eot_positions(token_ids)
        elif eot_positions is None:
            raise ValueError("token_embeddings need their eot_positions")
        length = int(eot_positions.max()) + 1
        if not truncate:
            length = self.positional_embedding.shape[0]
            pad = self.token_embedding.weight[0].expand(
                token_embeddings.shape[0], length - token_embeddings.shape[1], -1)
            token_embeddings = torch.cat([token_embeddings, pad.to(token_embeddings.dtype)], 1)
        cast_dtype = self.transformer.get_cast_dtype()
        x = token_embeddings[:, :length].to(cast_dtype)
        x = x + self.positional_embedding[:length].to(cast_dtype)
        mask = None if self.attn_mask is None else self.attn_mask[:length, :length]
        recompute = self.checkpoint and torch.is_grad_enabled() and x.requires_grad
        chunk = self.cpu_chunk if x.device.type == "cpu" or recompute else x.shape[0]
        if recompute:
            parts = [checkpoint(self.transformer, part, attn_mask=mask, use_reentrant=False)
                     for part in x.split(chunk)]
        else:
            parts = [self.transformer(part, attn_mask=mask) for part in x.split(chunk)]
        x = torch.cat(parts)
        x = x[torch.arange(x.shape[0], device=x.device), eot_positions]
        return self._project(x)  # per-token LayerNorm: applying it after the gather is exact

    # A packed sequence (shared prefix + several classes' suffixes) holds at most this many
    # suffix tokens: attention stays a small share of the cost and its memory bounded.
    pack_tokens = 224

    def encode_shared_prefix(self, prefix: torch.Tensor, suffix: torch.Tensor,
                             suffix_lengths: torch.Tensor) -> torch.Tensor:
        """Text features [B, K, D] of the K prompts ``prefix[b] + suffix[k, :suffix_lengths[k]]``
        of each of B prefixes [B, P, W] (token embeddings; the suffix [K, S, W] ends with the
        end-of-text token).

        The causal mask makes a prefix token's states the same in every class's prompt, so each
        prefix is encoded once: its P tokens and the suffixes of several classes form one packed
        sequence in which a suffix token attends to the prefix and to its own class's earlier
        tokens only, at the positions it has in its own prompt. Equal to encoding the K full
        prompts (up to float rounding), for B*(P + sum of suffix lengths) tokens instead of
        B*K*(P + max suffix length).
        """
        n, p = prefix.shape[:2]
        cast_dtype = self.transformer.get_cast_dtype()
        prefix = prefix.to(cast_dtype) + self.positional_embedding[:p].to(cast_dtype)
        recompute = self.checkpoint and torch.is_grad_enabled() and prefix.requires_grad
        outputs = []
        for classes, tokens, positions, mask, ends in packed_layout(
                tuple(suffix_lengths.tolist()), p, self.pack_tokens):
            packed = suffix[classes, tokens].to(cast_dtype) + \
                self.positional_embedding[positions].to(cast_dtype)
            x = torch.cat([prefix, packed.expand(n, -1, -1)], dim=1)
            mask = mask.to(x.device)
            if recompute:
                x = checkpoint(self._transformer_onednn, x, mask, use_reentrant=False)
            else:
                x = self._transformer_onednn(x, mask)
            outputs.append(x[:, ends.to(x.device)])
        return self._project(torch.cat(outputs, dim=1))

    def _transformer_onednn(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``self.transformer(x, attn_mask=mask)``; for fp32 on the CPU and open_clip's standard
        blocks, with every matrix product through ``onednn.linear``."""
        blocks = self.transformer.resblocks
        if not (x.device.type == "cpu" and x.dtype == torch.float32
                and self.transformer.batch_first and all(map(_standard_block, blocks))):
            return self.transformer(x, attn_mask=mask)
        for block in blocks:
            x = _block_onednn(block, x, mask)
        return x

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln_final(x)
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x)
        return x if self.text_projection is None else x @ self.text_projection


def _standard_block(block: nn.Module) -> bool:
    return (isinstance(block, ResidualAttentionBlock) and not hasattr(block, "ln_1_kv")
            and block.attn.batch_first and block.attn.in_proj_weight is not None
            and block.attn.bias_k is None and hasattr(block.mlp, "c_fc"))


def _block_onednn(block: ResidualAttentionBlock, x: torch.Tensor, mask: torch.Tensor):
    """open_clip's ``ResidualAttentionBlock.forward(x, attn_mask=mask)`` (no dropout), its
    projections and MLP through ``onednn.linear``."""
    attn, mlp = block.attn, block.mlp
    n, length, width = x.shape
    qkv = onednn.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.view(n, length, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype))
    out = out.transpose(1, 2).reshape(n, length, width)
    x = x + block.ls_1(onednn.linear(out, attn.out_proj.weight, attn.out_proj.bias))
    hidden = mlp.gelu(onednn.linear(block.ln_2(x), mlp.c_fc.weight, mlp.c_fc.bias))
    return x + block.ls_2(onednn.linear(hidden, mlp.c_proj.weight, mlp.c_proj.bias))


@functools.lru_cache(maxsize=64)
def packed_layout(lengths: Tuple[int, ...], p: int, pack_tokens: int):
    """Classes (in order) packed greedily into sequences of <= ``pack_tokens`` suffix tokens
    after a ``p``-token prefix. Per pack: the class and token index of each packed token, its
    position in its own prompt, the additive attention mask over [prefix, packed] (causal, and
    a suffix token sees only the prefix and its own class) and each class's end-of-text index."""
    packs, start = [], 0
    while start < len(lengths):
        stop, total = start + 1, lengths[start]
        while stop < len(lengths) and total + lengths[stop] <= pack_tokens:
            total, stop = total + lengths[stop], stop + 1
        classes = torch.cat([torch.full((lengths[k],), k) for k in range(start, stop)])
        tokens = torch.cat([torch.arange(lengths[k]) for k in range(start, stop)])
        owner = torch.cat([torch.full((p,), -1), classes])
        position = torch.cat([torch.arange(p), p + tokens])
        allowed = (position[None, :] <= position[:, None]) & (
            (owner[None, :] == -1) | (owner[None, :] == owner[:, None]))
        mask = torch.zeros(allowed.shape).masked_fill_(~allowed, float("-inf"))
        ends = p + torch.tensor(lengths[start:stop]).cumsum(0) - 1
        packs.append((classes, tokens, p + tokens, mask, ends))
        start = stop
    return packs


@torch.no_grad()
def encode_prompts(clip_model: nn.Module, model_name: str, class_names: Sequence[str],
                   templates: Sequence[str]) -> torch.Tensor:
    """L2-normalised text embeddings [K, D] of ``class_names``, averaged over ``templates``.

    Each template holds one ``{}`` for the class name (``"a photo of a {}."``); with several
    templates the normalised embeddings are averaged and normalised again (CLIP's ensembling).
    """
    if not templates or any(t.count("{}") != 1 for t in templates):
        raise ValueError(f"prompt templates must each contain one '{{}}', got {list(templates)}")
    tokenizer = get_tokenizer(model_name)
    encoder = ClipTextEncoder(clip_model)
    device = next(clip_model.parameters()).device
    prompts = [t.format(c) for c in class_names for t in templates]
    feats = F.normalize(encoder(tokenizer(prompts).to(device)).float(), dim=-1)
    feats = feats.view(len(class_names), len(templates), -1).mean(dim=1)
    return F.normalize(feats, dim=-1)
