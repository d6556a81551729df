"""Naive twins of domaingen's fast paths: what a direct implementation computes, kept as the
reference the benchmark times against and the tests compare with (same outputs, fp32)."""
import torch

from domaingen.modeling.augmentation.objective import augmentation_loss, text_shifted_targets
from domaingen.modeling.augmentation.step import clip_embeddings


def augmentation_step_per_domain(model, crops: torch.Tensor, optimizer: torch.optim.Optimizer,
                                 l1_weight: float = 1.0) -> float:
    """CLIP the Gap's optimization step as a loop over target domains that recomputes the trunk
    features and clean embeddings for each domain and back-propagates through the whole
    detector (the authors' loop); the bank update equals ``augmentation_step``'s."""
    bank = model.augmentation_bank
    optimizer.zero_grad(set_to_none=True)
    bank.offsets.requires_grad_(True)
    total = 0.0
    try:
        for j in range(len(bank)):
            features = model.backbone(model.normalize(crops.float()))["res4"]
            z = clip_embeddings(model, features)
            target = text_shifted_targets(z.detach(), bank.text_directions)[j]
            z_aug = clip_embeddings(model, features + bank.offsets[j])
            loss = augmentation_loss(z.detach(), z_aug, target, l1_weight) / len(bank)
            loss.backward()
            total += float(loss.detach())
        optimizer.step()
    finally:
        bank.offsets.requires_grad_(False)
        bank.offsets.grad = None
        model.zero_grad(set_to_none=True)
    bank.optimized_iters += 1
    return total
