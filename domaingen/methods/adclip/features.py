"""Per-layer feature statistics of a CLIP image tower, taken with forward hooks.

ViT: the output of every transformer block (all tokens, class token included, before
``ln_post``). ModifiedResNet (RN50/RN101): the output of each of the 4 stages, over spatial
positions. open_clip's modules are not modified: hooks are registered for one forward only.
"""
from typing import List, Tuple

import torch
from torch import nn

# The AD-CLIP authors' epsilon, added to the sum of squared deviations before dividing by the
# number of tokens T: sigma = sqrt((sum_t (x_t - mu)^2 + eps) / T) = sqrt(var + eps / T).
# Their ViT trainers use 2.3e-8 (T = 197 for ViT-B/16 at 224 px), their RN50 trainer 1e-8
# (T = H * W of the stage: 56^2 ... 7^2).
VIT_STD_EPS = 2.3e-8
RESNET_STD_EPS = 1e-8


def token_statistics(x: torch.Tensor, eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over tokens of ``x`` [B, T, C]: (mu [B, C], sigma [B, C]),
    ``sigma = sqrt((sum_t (x_t - mu)^2 + eps) / T)`` (population variance, ``eps / T`` inside
    the square root), computed in fp32."""
    x = x.float()
    mu = x.mean(dim=1)
    squares = (x - mu[:, None]).pow(2).sum(dim=1)
    return mu, torch.sqrt((squares + eps) / x.shape[1])


class MultiScaleStatistics:
    """Runs a frozen CLIP image tower once and returns its embedding together with per-layer
    statistics ``mus``, ``sigmas`` (lists of [B, C_l], detached).

    :attr:`dims` holds the channel count C_l of each layer, :attr:`family` "vit" or "resnet",
    :attr:`std_eps` the epsilon of the standard deviation (the authors' value for the family).
    """

    def __init__(self, visual: nn.Module):
        self.visual = visual
        if hasattr(visual, "transformer"):  # open_clip VisionTransformer
            self.layers = list(visual.transformer.resblocks)
            self.dims = [visual.transformer.width] * len(self.layers)
            self.batch_first = getattr(visual.transformer, "batch_first", True)
            self.family, self.std_eps = "vit", VIT_STD_EPS
        elif hasattr(visual, "layer4"):  # open_clip ModifiedResNet
            self.layers = [visual.layer1, visual.layer2, visual.layer3, visual.layer4]
            self.dims = [stage[-1].conv3.out_channels for stage in self.layers]
            self.batch_first = True
            self.family, self.std_eps = "resnet", RESNET_STD_EPS
        else:
            raise ValueError(f"AD-CLIP needs an open_clip VisionTransformer or ModifiedResNet "
                             f"image tower, got {type(visual).__name__}")

    def _tokens(self, out: torch.Tensor) -> torch.Tensor:
        if out.dim() == 4:  # ResNet stage: [B, C, H, W] -> [B, HW, C]
            return out.flatten(2).transpose(1, 2)
        return out if self.batch_first else out.transpose(0, 1)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor
                 ) -> Tuple[torch.Tensor, List[torch.Tensor], List[torch.Tensor]]:
        stats = []
        handles = [layer.register_forward_hook(
            lambda module, args, out: stats.append(
                token_statistics(self._tokens(out), self.std_eps)))
            for layer in self.layers]
        try:
            embedding = self.visual(images)
        finally:
            for handle in handles:
                handle.remove()
        mus, sigmas = (list(s) for s in zip(*stats))
        return embedding, mus, sigmas
