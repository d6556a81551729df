"""One iteration of CLIP the Gap's optimization step."""
from typing import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from detectron2.utils import comm

from .objective import augmentation_loss, text_shifted_targets


def clip_embeddings(model, features: torch.Tensor) -> torch.Tensor:
    """normalise(V_b(features)): CLIP layer4 + attention pool of the detector's ROI head."""
    return F.normalize(model.roi_heads.embed(features)[0], dim=-1)


def augmentation_step(model, crops: torch.Tensor, optimizer: torch.optim.Optimizer,
                      l1_weight: float = 1.0, loss_over_m_plus_1: bool = False,
                      clean_pass_per_prompt: bool = False) -> float:
    """Update the bank of ``model`` (a ClipGapRCNN) on a batch of crops; return L_opt.

    V_a(crops) and the clean embeddings z do not depend on the offsets: they are computed once,
    without grad, and shared by all M prompts. Each prompt's loss is back-propagated on its own
    (memory stays that of one prompt) and only into the bank: gradients of the detector's
    parameters are neither computed nor accumulated. Under DDP the bank gradient is averaged
    over processes, so every process keeps the same bank.

    The authors' quirks: ``loss_over_m_plus_1`` divides the summed loss by M + 1 instead of M;
    ``clean_pass_per_prompt`` runs the clean layer4 pass again before each prompt's augmented
    pass (their order), which only changes train-mode BatchNorm running statistics.
    """
    bank = model.augmentation_bank
    with torch.no_grad():
        features = model.backbone(model.normalize(crops.float()))["res4"]
        z = clip_embeddings(model, features)
        targets = text_shifted_targets(z, bank.text_directions)
    grad = torch.zeros_like(bank.offsets)
    total = 0.0
    divisor = len(bank) + 1 if loss_over_m_plus_1 else len(bank)
    bank.offsets.requires_grad_(True)
    try:
        for j in range(len(bank)):
            if clean_pass_per_prompt and j > 0:
                with torch.no_grad():
                    model.roi_heads.res5(features)
            z_aug = clip_embeddings(model, features + bank.offsets[j])
            loss = augmentation_loss(z, z_aug, targets[j], l1_weight) / divisor
            grad += torch.autograd.grad(loss, bank.offsets)[0]
            total += float(loss.detach())
    finally:
        bank.offsets.requires_grad_(False)
    if comm.get_world_size() > 1:
        dist.all_reduce(grad)
        grad /= comm.get_world_size()
    optimizer.zero_grad(set_to_none=True)
    bank.offsets.grad = grad
    optimizer.step()
    bank.offsets.grad = None
    bank.optimized_iters += 1
    return total


def stack_crops(batch: Sequence[dict]) -> torch.Tensor:
    """Crops of a loader batch as one [N, 3, S, S] tensor."""
    return torch.cat([d["crops"] for d in batch])
