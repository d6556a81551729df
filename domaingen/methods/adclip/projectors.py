"""AD-CLIP's projectors from per-layer statistics (mu_l, sigma_l) [B, C_l] to prompt tokens of
the text width W. One projector per layer l = 1..L, each with its layer's input width.

``first_linear(in, out)`` builds the first Linear layer of every per-layer projector
(default ``nn.Linear``; :class:`FixedLinear` for the authors' untrained RN50 layers)."""
from typing import Callable, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

LinearFactory = Callable[[int, int], nn.Module]


class FixedLinear(nn.Module):
    """A Linear layer that never trains and is not saved: weight [out, in] and bias [out] are
    non-persistent buffers drawn from ``generator`` with nn.Linear's default distribution
    (uniform in +-1/sqrt(in)), so the same generator state rebuilds the same layer."""

    def __init__(self, in_features: int, out_features: int, generator: torch.Generator):
        super().__init__()
        bound = in_features ** -0.5
        weight = (torch.rand(out_features, in_features, generator=generator) * 2 - 1) * bound
        bias = (torch.rand(out_features, generator=generator) * 2 - 1) * bound
        self.register_buffer("weight", weight, persistent=False)
        self.register_buffer("bias", bias, persistent=False)
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class StyleProjector(nn.Module):
    """Domain tokens: per layer, (mu_l + sigma_l) / 2 -> Linear(C_l, hidden) -> Linear(hidden, W);
    returns [B, L, W] (one domain token per layer)."""

    def __init__(self, dims: Sequence[int], width: int, hidden: int = 256,
                 first_linear: LinearFactory = nn.Linear):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(first_linear(c, hidden), nn.Linear(hidden, width)) for c in dims)

    def forward(self, mus: List[torch.Tensor], sigmas: List[torch.Tensor]) -> torch.Tensor:
        return torch.stack([proj((mu + sigma) / 2)
                            for proj, mu, sigma in zip(self.layers, mus, sigmas)], dim=1)


class ContentProjector(nn.Module):
    """Image tokens: per layer, mu_l -> Linear(C_l, W); the L outputs are mixed over layers by
    Linear(L, m) into ``n_tokens`` tokens [B, n_tokens, W]. With ``shared_mixer`` (the authors')
    m = 1 and the single token is repeated ``n_tokens`` times; otherwise each token has its own
    mixing weights (m = n_tokens). The mixer's bias shifts all W elements of a token alike, which
    the text encoder's LayerNorms cancel, so it gets no gradient (kept: the authors have it)."""

    def __init__(self, dims: Sequence[int], width: int, n_tokens: int = 4,
                 shared_mixer: bool = True, first_linear: LinearFactory = nn.Linear):
        super().__init__()
        self.layers = nn.ModuleList(first_linear(c, width) for c in dims)
        self.mixer = nn.Linear(len(dims), 1 if shared_mixer else n_tokens)
        self.n_tokens = n_tokens

    def forward(self, mus: List[torch.Tensor]) -> torch.Tensor:
        per_layer = torch.stack([proj(mu) for proj, mu in zip(self.layers, mus)], dim=-1)
        tokens = self.mixer(per_layer).transpose(1, 2)  # [B, W, L] -> [B, m, W]
        return tokens.expand(-1, self.n_tokens, -1)


class StyleMappingProjector(nn.Module):
    """Style-mapping tokens (trained to match the domain tokens, never put in a prompt): per
    layer, cat(mu_l, sigma_l) [2 C_l] -> average of adjacent pairs [C_l] -> Linear(C_l, hidden)
    -> ReLU -> Linear(hidden, W); returns [B, L, W]."""

    def __init__(self, dims: Sequence[int], width: int, hidden: int = 384,
                 first_linear: LinearFactory = nn.Linear):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(first_linear(c, hidden), nn.ReLU(), nn.Linear(hidden, width))
            for c in dims)

    def forward(self, mus: List[torch.Tensor], sigmas: List[torch.Tensor]) -> torch.Tensor:
        out = []
        for proj, mu, sigma in zip(self.layers, mus, sigmas):
            pooled = torch.cat([mu, sigma], dim=1).unflatten(1, (-1, 2)).mean(dim=-1)
            out.append(proj(pooled))
        return torch.stack(out, dim=1)
