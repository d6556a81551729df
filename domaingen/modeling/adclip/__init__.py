"""AD-CLIP's parts: multi-scale statistics of the CLIP image tower and the prompt projectors."""
from .features import RESNET_STD_EPS, VIT_STD_EPS, MultiScaleStatistics, token_statistics
from .losses import batch_normalized_entropy, mean_entropy, text_distribution_kl
from .prompt_learner import ADCLIPPromptLearner
from .projectors import ContentProjector, FixedLinear, StyleMappingProjector, StyleProjector

__all__ = [
    "ADCLIPPromptLearner", "ContentProjector", "FixedLinear", "MultiScaleStatistics",
    "RESNET_STD_EPS", "StyleMappingProjector", "StyleProjector", "VIT_STD_EPS",
    "batch_normalized_entropy", "mean_entropy", "text_distribution_kl", "token_statistics",
]
