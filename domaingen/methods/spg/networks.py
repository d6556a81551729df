"""SPG's conditional GAN over soft prompts (METHODS.md section 3).

The generator maps noise and an L2-normalised CLIP image embedding to a prompt context
``[n_ctx, width]``; the discriminator scores a (prompt, image embedding) pair. Both are trained
with least-squares GAN losses and per-parameter gradient-norm clipping. Layers are built in the
authors' order, so parameter names (``net.<index>.weight``) carry their layer indices.
"""
from typing import Dict, Iterable, List

import torch
import torch.nn.functional as F
from torch import nn


def _he_uniform(module: nn.Module) -> None:
    """He-uniform weights (fan in, gain sqrt(2)) for every Linear layer, as the authors; biases
    keep PyTorch's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="leaky_relu")


class PromptGenerator(nn.Module):
    """[z, f(x)] -> 128 -> 256 -> 512 -> 1024 -> n_ctx * width, tanh, reshaped to [n_ctx, width].

    Hidden layers but the first have ``BatchNorm1d(out, bn_eps)``; the authors' ``bn_eps`` is 0.8
    (their ``BatchNorm1d(out, 0.8)`` passes 0.8 as eps), kept as the default.
    """

    def __init__(self, feat_dim: int, n_ctx: int, width: int, latent_dim: int = 100,
                 bn_eps: float = 0.8, slope: float = 0.2):
        super().__init__()
        self.n_ctx, self.width, self.latent_dim = n_ctx, width, latent_dim
        layers: List[nn.Module] = []
        dims = [feat_dim + latent_dim, 128, 256, 512, 1024]
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(d_in, d_out))
            if i > 0:
                layers.append(nn.BatchNorm1d(d_out, bn_eps))
            layers.append(nn.LeakyReLU(slope, inplace=True))
        layers += [nn.Linear(1024, n_ctx * width), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        _he_uniform(self)

    def forward(self, noise: torch.Tensor, image_features: torch.Tensor) -> torch.Tensor:
        out = self.net(torch.cat([noise, image_features.to(noise.dtype)], dim=1))
        return out.view(-1, self.n_ctx, self.width)

    def gradient_limits(self, weight: float, bias: float, last_bias: float) -> Dict[str, float]:
        """Clipping limit per parameter name: every weight (Linear and BatchNorm) gets ``weight``;
        the biases of the last BatchNorm and of the output Linear get ``last_bias``; every other
        bias gets ``bias``. This is what the authors' name test (``"9.bias"`` or ``"11.bias"``
        in the name) selects: layers 9 and 11 are the last BatchNorm and the output Linear."""
        last_bn = [n for n, m in self.named_modules() if isinstance(m, nn.BatchNorm1d)][-1]
        last = [n for n, m in self.named_modules() if isinstance(m, nn.Linear)][-1]
        last_biases = (f"{last_bn}.bias", f"{last}.bias")
        return {n: weight if n.endswith("weight") else last_bias if n in last_biases else bias
                for n, _ in self.named_parameters()}


class PromptDiscriminator(nn.Module):
    """[prompt flattened, f(x)] -> 512 -> (512, dropout) x 2 -> 1 score (no sigmoid: LSGAN)."""

    def __init__(self, prompt_dim: int, feat_dim: int, dropout: float = 0.4, slope: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(prompt_dim + feat_dim, 512), nn.LeakyReLU(slope, inplace=True),
            nn.Linear(512, 512), nn.Dropout(dropout), nn.LeakyReLU(slope, inplace=True),
            nn.Linear(512, 512), nn.Dropout(dropout), nn.LeakyReLU(slope, inplace=True),
            nn.Linear(512, 1))
        _he_uniform(self)

    def forward(self, prompts: torch.Tensor, image_features: torch.Tensor) -> torch.Tensor:
        x = torch.cat([prompts.flatten(1), image_features.to(prompts.dtype)], dim=1)
        return self.net(x).squeeze(1)

    def gradient_limits(self, weight: float, bias: float, first_last: float) -> Dict[str, float]:
        """Clipping limit per parameter name: the first and last Linear (weight and bias) get
        ``first_last``, other weights ``weight``, other biases ``bias``: what the authors' name
        test selects (``"0.weight"``, ``"0.bias"``, ``"8.weight"``, ``"8.bias"``: layers 0
        and 8)."""
        linears = [n for n, m in self.named_modules() if isinstance(m, nn.Linear)]
        ends = (linears[0] + ".", linears[-1] + ".")
        return {n: first_last if n.startswith(ends) else bias if n.endswith("bias") else weight
                for n, _ in self.named_parameters()}


def lsgan_loss(scores: torch.Tensor, target: float) -> torch.Tensor:
    """Least-squares GAN loss: mean squared distance of the scores to ``target`` (1 or 0)."""
    return F.mse_loss(scores, torch.full_like(scores, target))


def clip_gradients_per_parameter(named_parameters: Iterable, limits: Dict[str, float]) -> None:
    """Clip each parameter's gradient whose norm exceeds its own limit, with ``clip_grad_norm_``
    on that parameter alone (as the authors: a gradient within its limit is left untouched, which
    matters for limits far below ``clip_grad_norm_``'s 1e-6 epsilon, such as 5e-8)."""
    for name, p in named_parameters:
        if p.grad is not None and torch.linalg.vector_norm(p.grad) > limits[name]:
            torch.nn.utils.clip_grad_norm_(p, limits[name])
