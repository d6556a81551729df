"""Twins of domaingen's fast paths that do the work the authors' code does: the reference the
benchmark times against and the tests compare with (same results, fp32). Each docstring names
the authors' function it mirrors and what it leaves out."""
from typing import Sequence

import torch
import torch.nn.functional as F
from open_clip.modified_resnet import AttentionPool2d


def authors_clip_embeddings(model, features: torch.Tensor) -> torch.Tensor:
    """normalise(attnpool(layer4(features))) with CLIP's own attention pool (attention over all
    1 + H*W tokens, as the authors' ``backbone.attention_global_pool`` runs it)."""
    pooled = AttentionPool2d.forward(model.roi_heads.attnpool, model.roi_heads.res5(features))
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
    ``.cuda()`` copies and the loss-dict logging. BatchNorm is whatever ``model`` has (theirs is
    train-mode BatchNorm; the benchmark runs both paths with frozen BatchNorm).
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
