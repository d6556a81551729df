"""AD-CLIP's prompt learner: every context token is generated from image-feature statistics."""
import functools
from typing import List, Optional, Sequence

import torch
from torch import nn

from domaingen.modeling.prompts import PromptTokens

from .projectors import ContentProjector, FixedLinear, StyleMappingProjector, StyleProjector


class ADCLIPPromptLearner(nn.Module):
    """The three projectors and the fixed prompt tokens; the only part of AD-CLIP that trains.

    A prompt is ``[SOS] + L source-domain tokens + L target-domain tokens + n image tokens +
    <class name> . [EOS]`` (L layers of the image tower: 12 for ViT-B/16, 4 for RN50; n = 4).

    With ``untrained_first_layers_seed`` (the authors' RN50 trainer) the first Linear layer of
    every per-layer projector is a :class:`FixedLinear` drawn from a generator seeded with it
    (style, content, then style-mapping projector, layer by layer): never trained, not saved,
    rebuilt identically from the seed when a checkpoint is evaluated.
    """

    def __init__(self, clip_model: nn.Module, model_name: str, class_names: Sequence[str],
                 dims: Sequence[int], style_hidden: int = 256, style_mapping_hidden: int = 384,
                 n_image_tokens: int = 4, shared_image_mixer: bool = True,
                 untrained_first_layers_seed: Optional[int] = None):
        super().__init__()
        width = clip_model.token_embedding.embedding_dim
        first_linear = nn.Linear
        if untrained_first_layers_seed is not None:
            generator = torch.Generator().manual_seed(untrained_first_layers_seed)
            first_linear = functools.partial(FixedLinear, generator=generator)
        self.style = StyleProjector(dims, width, style_hidden, first_linear)
        self.content = ContentProjector(dims, width, n_image_tokens, shared_image_mixer,
                                        first_linear)
        self.style_mapping = StyleMappingProjector(dims, width, style_mapping_hidden, first_linear)
        self.tokens = PromptTokens(clip_model, model_name, class_names,
                                   2 * len(dims) + n_image_tokens)

    @staticmethod
    def context(source_domain: torch.Tensor, target_domain: torch.Tensor,
                image_tokens: torch.Tensor) -> torch.Tensor:
        """The context [B, 2L + n, W] of B images' prompts: their domain tokens [B, L, W]
        (source and target slots), then their image tokens [B, n, W]."""
        return torch.cat([source_domain, target_domain, image_tokens], dim=1)

    def prompts(self, source_domain: torch.Tensor, target_domain: torch.Tensor,
                image_tokens: torch.Tensor) -> torch.Tensor:
        """Token embeddings [B, K, T, W] of the prompts of B images for every class."""
        return self.tokens.assemble(self.context(source_domain, target_domain, image_tokens))

    def domain_and_image_tokens(self, mus: List[torch.Tensor], sigmas: List[torch.Tensor]):
        return self.style(mus, sigmas), self.content(mus)
