"""The optimization-step loss of CLIP the Gap."""
import torch
import torch.nn.functional as F


def text_shifted_targets(z: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """z*_j = normalise(z + d_j): [M, N, D] from clean embeddings z [N, D] and d [M, D]."""
    return F.normalize(z[None] + directions[:, None], dim=-1)


def augmentation_loss(z: torch.Tensor, z_aug: torch.Tensor, target: torch.Tensor,
                      l1_weight: float = 1.0) -> torch.Tensor:
    """Per-prompt loss ``mean_n(1 - cos(z_bar, z*)) + l1_weight * L1(z_bar, z)``.

    Args:
        z: normalised clean embeddings [N, D].
        z_aug: normalised embeddings of augmented features, z_bar, [..., N, D].
        target: text-shifted targets z* with the shape of ``z_aug``.
    Returns the loss per leading index of ``z_aug`` (a scalar for [N, D] inputs).
    """
    distance = (1 - F.cosine_similarity(z_aug, target, dim=-1)).mean(dim=-1)
    l1 = (z_aug - z).abs().mean(dim=(-2, -1))
    return distance + l1_weight * l1


def optimization_loss(z: torch.Tensor, z_aug: torch.Tensor, directions: torch.Tensor,
                      l1_weight: float = 1.0) -> torch.Tensor:
    """L_opt = mean_j [mean_n (1 - cos(z_bar_j, z*_j)) + L1(z_bar_j, z)] for z_aug [M, N, D]."""
    return augmentation_loss(z, z_aug, text_shifted_targets(z, directions), l1_weight).mean()
