"""AD-CLIP (Singha et al., ICCV-W 2023): unsupervised domain adaptation in CLIP's prompt space."""
from .features import RESNET_STD_EPS, VIT_STD_EPS, MultiScaleStatistics, token_statistics
from .losses import batch_normalized_entropy, mean_entropy, text_distribution_kl
from .method import ADCLIPMethod
from .model import ADCLIPClassifier
from .paired_loader import build_paired_train_loader
from .projectors import ContentProjector, FixedLinear, StyleMappingProjector, StyleProjector
from .prompt_learner import ADCLIPPromptLearner
from .schedule import authors_adclip_lr_factor, build_authors_adclip_lr_scheduler

__all__ = [
    "ADCLIPClassifier", "ADCLIPMethod", "ADCLIPPromptLearner", "ContentProjector",
    "FixedLinear", "MultiScaleStatistics", "RESNET_STD_EPS", "StyleMappingProjector",
    "StyleProjector", "VIT_STD_EPS", "authors_adclip_lr_factor", "batch_normalized_entropy",
    "build_authors_adclip_lr_scheduler", "build_paired_train_loader", "mean_entropy",
    "text_distribution_kl", "token_statistics",
]
