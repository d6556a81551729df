"""CLIP the Gap's semantic augmentations: the bank, its loss and its optimization step."""
from .bank import (
    AugmentationBankError,
    SemanticAugmentationBank,
    build_augmentation_bank,
    check_prompts,
    domain_text_directions,
)
from .objective import augmentation_loss, optimization_loss, text_shifted_targets
from .step import augmentation_step, clip_embeddings, stack_crops

__all__ = [
    "AugmentationBankError", "SemanticAugmentationBank", "augmentation_loss", "augmentation_step",
    "clip_embeddings", "stack_crops",
    "build_augmentation_bank", "check_prompts", "domain_text_directions", "optimization_loss",
    "text_shifted_targets",
]
