"""Twins of domaingen's fast paths that do the work the authors' code does: the reference the
benchmark times against and the tests compare with (same results, fp32). Each docstring names
the authors' function it mirrors and what it leaves out."""
import contextlib
from typing import Sequence

import torch
import torch.nn.functional as F
from detectron2.modeling.roi_heads import Res5ROIHeads

from domaingen.clip import MeanTokenAttentionPool, build_clip_from_cfg, clip_attention_pool


def authors_clip_embeddings(model, features: torch.Tensor) -> torch.Tensor:
    """normalise(attnpool(layer4(features))) with CLIP's own attention pool (attention over all
    1 + H*W tokens, as the authors' ``backbone.attention_global_pool`` runs it)."""
    pool = model.roi_heads.attnpool
    pool = pool.forward_all_tokens if isinstance(pool, MeanTokenAttentionPool) else pool
    pooled = pool(model.roi_heads.res5(features))
    return F.normalize(pooled, dim=-1)


def optimization_step_authors(model, clip_model, source_tokens: torch.Tensor,
                              target_tokens: torch.Tensor, crops: torch.Tensor,
                              optimizer: torch.optim.Optimizer) -> float:
    """CLIP the Gap's optimization step as vidit09/domaingen runs it:
    ``ClipRCNNWithClipBackboneWithOffsetGenTrainable.opt_offsets`` (modeling/meta_arch.py) and
    the optimization phase of ``Trainer.run_step`` (train.py).

    The trunk runs once without grad; then, for each of the M target prompts: the clean layer4 +
    attention pool again (no grad), the source and the target prompt through CLIP's text
    encoder (77 tokens each, no grad), and the augmented layer4 + attention pool with grad. The
    M graphs are kept until one backward of ``(sum of cosine distances + sum of L1) / (M + 1)``,
    which also computes the gradients of every trainable layer4 / attention-pool weight; only
    the offsets take an Adam step. Left out: their data-loader crops (``crops`` are given),
    ``.cuda()`` copies and the loss-dict logging. BatchNorm is whatever ``model`` has (the
    benchmark builds it as theirs, in train mode; the tests compare with frozen BatchNorm).
    """
    bank = model.augmentation_bank
    with torch.no_grad():
        features = model.backbone(model.normalize(crops.float()))["res4"]
    total_dist, total_reg = 0.0, 0.0
    bank.offsets.requires_grad_(True)
    try:
        for j in range(len(bank)):
            with torch.no_grad():
                clean = authors_clip_embeddings(model, features)
                source = F.normalize(clip_model.encode_text(source_tokens), dim=-1)
                target = F.normalize(clip_model.encode_text(target_tokens[j:j + 1]), dim=-1)
                shifted = F.normalize(clean + F.normalize(target - source, dim=-1), dim=-1)
            augmented = authors_clip_embeddings(model, features.detach() + bank.offsets[j:j + 1])
            total_dist = total_dist + (1 - (augmented * shifted).sum(dim=-1)).mean()
            total_reg = total_reg + F.l1_loss(augmented, clean)
        loss = (total_dist + total_reg) / (len(bank) + 1)
        optimizer.zero_grad()
        model.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    finally:
        bank.offsets.requires_grad_(False)
        bank.offsets.grad = None
        model.zero_grad(set_to_none=True)
    bank.optimized_iters += 1
    return float(loss.detach())


def domain_prompt_tokens(tokenizer, source_prompt: str, target_prompts: Sequence[str]):
    """(source [1, 77], targets [M, 77]) token ids, as the authors tokenise them once."""
    return tokenizer([source_prompt]), tokenizer(list(target_prompts))


def authors_detector(model, cfg):
    """Turn ``model`` (a ClipGapRCNN built with ``MODEL.CLIP.FROZEN_BN False``: CLIP's
    BatchNorm in train mode, as theirs) into the detector vidit09/domaingen trains
    (``ClipRCNNWithClipBackboneWithOffsetGenTrainable`` with ``ClipRes5ROIHeadsAttn``,
    ``ClipFastRCNNOutputLayers``/``ClipPredictor`` and the ``ClipRN101`` backbone).

    Their ROI head pools with CLIP's own attention pool (all 1 + 7x7 tokens), so the ROI head's
    pool goes back to open_clip's ``AttentionPool2d`` with the same weights. Their model also
    carries modules the iteration never runs, all in its checkpoint: ``ClipPredictor.model``'s
    text tower (its visual tower is the backbone), ``frozen_clip_model`` (a full second CLIP
    copy), the R101 ``res5`` block ``Res5ROIHeads`` builds (trainable), and four unused
    trainable Linear layers (``ClipPredictor.projection{,_global}``, ``ClipRN101.proj``,
    ``ClipRN101.global_proj``). Left out: their visualisation hooks and ``.cuda()`` copies.
    """
    heads = model.roi_heads
    pool = heads.attnpool
    heads.attnpool = clip_attention_pool(pool)
    text_tower = build_clip_from_cfg(cfg)
    del text_tower.visual
    frozen_copy = build_clip_from_cfg(cfg)
    for p in [*text_tower.parameters(), *frozen_copy.parameters()]:
        p.requires_grad_(False)
    channels = heads.res5[-1].conv3.out_channels
    embed_dim = pool.c_proj.out_features
    model.authors_unused = torch.nn.ModuleDict({
        "clip_text": text_tower, "frozen_clip_model": frozen_copy,
        "res5": Res5ROIHeads._build_res5_block(cfg)[0],
        "projection": torch.nn.Linear(channels, embed_dim),
        "projection_global": torch.nn.Linear(channels, embed_dim),
        "proj": torch.nn.Linear(embed_dim, embed_dim),
        "global_proj": torch.nn.Linear(embed_dim, embed_dim)}).to(pool.positional_embedding.device)
    return model


@contextlib.contextmanager
def per_image_text(model):
    """Within the block, ``model`` (a CLIP classifier with ``truncate_text`` False) encodes its
    prompts one image at a time: K 77-token prompts per text-encoder call, the loop over the
    images of a batch that the authors' CoCoOp (KaiyangZhou/CoOp ``CustomCLIP.forward``) and
    AD-CLIP (mainaksingha01/AD-CLIP ``CustomCLIP.forward``) run. Prompts shared by all images
    (CoOp's) stay one call. Left out: nothing of the text work; their fp16 towers run here in
    the benchmark's precision."""
    encode = model.encode_tokens

    def looped(tokens, eot_positions):
        if tokens.dim() == 3:
            return encode(tokens, eot_positions)
        return torch.stack([encode(t, eot_positions) for t in tokens])

    model.encode_tokens = looped
    try:
        yield
    finally:
        del model.encode_tokens
