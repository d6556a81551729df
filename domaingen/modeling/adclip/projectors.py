"""AD-CLIP's projectors from per-layer statistics (mu_l, sigma_l) [B, C_l] to prompt tokens of
the text width W. One projector per layer l = 1..L, each with its layer's input width."""
from typing import List, Sequence

import torch
from torch import nn


class StyleProjector(nn.Module):
    """Domain tokens: per layer, (mu_l + sigma_l) / 2 -> Linear(C_l, hidden) -> Linear(hidden, W);
    returns [B, L, W] (one domain token per layer)."""

    def __init__(self, dims: Sequence[int], width: int, hidden: int = 256):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(c, hidden), nn.Linear(hidden, width)) for c in dims)

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
                 shared_mixer: bool = True):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(c, width) for c in dims)
        self.mixer = nn.Linear(len(dims), 1 if shared_mixer else n_tokens)
        self.n_tokens = n_tokens

    def forward(self, mus: List[torch.Tensor]) -> torch.Tensor:
        per_layer = torch.stack([proj(mu) for proj, mu in zip(self.layers, mus)], dim=-1)
        tokens = self.mixer(per_layer).transpose(1, 2)  # [B, W, L] -> [B, m, W]
        return tokens.expand(-1, self.n_tokens, -1)


class StyleMappingProjector(nn.Module):
    """Style-mapping tokens (trained to match the domain tokens, never put in a prompt): per
    layer, cat(mu_l, sigma_l) [2 C_l] -> average of adjacent pairs [C_l] -> Linear(C_l, C_l/2)
    -> ReLU -> Linear(C_l/2, W); returns [B, L, W]."""

    def __init__(self, dims: Sequence[int], width: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(c, c // 2), nn.ReLU(), nn.Linear(c // 2, width))
            for c in dims)

    def forward(self, mus: List[torch.Tensor], sigmas: List[torch.Tensor]) -> torch.Tensor:
        out = []
        for proj, mu, sigma in zip(self.layers, mus, sigmas):
            pooled = torch.cat([mu, sigma], dim=1).unflatten(1, (-1, 2)).mean(dim=-1)
            out.append(proj(pooled))
        return torch.stack(out, dim=1)
