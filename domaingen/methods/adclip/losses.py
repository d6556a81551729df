"""AD-CLIP's unsupervised losses on the target batch and between the two prompt sets."""
import torch
import torch.nn.functional as F


def mean_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the entropy of softmax(logits) [B, K] (the paper's loss)."""
    return -(logits.softmax(dim=1) * logits.log_softmax(dim=1)).sum(dim=1).mean()


def batch_normalized_entropy(logits: torch.Tensor) -> torch.Tensor:
    """The authors' variant: the probabilities are L2-normalised over the batch (per class)
    first, then ``-sum_k p log(p + 1e-8)`` averaged over the batch."""
    p = F.normalize(logits.softmax(dim=1), dim=0)
    return -(p * torch.log(p + 1e-8)).sum(dim=1).mean()


def text_distribution_kl(source_text: torch.Tensor, target_text: torch.Tensor) -> torch.Tensor:
    """KL(softmax(target) || softmax(source)) over the class axis of the text features
    [B, K, D] of the source and target prompts, summed and divided by B, as the authors'
    ``KLDivLoss(reduction="batchmean")(log_softmax(source, 1), softmax(target, 1))``."""
    return F.kl_div(source_text.log_softmax(dim=1), target_text.softmax(dim=1),
                    reduction="batchmean")
