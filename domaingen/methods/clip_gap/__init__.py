"""CLIP the Gap (Vidit et al., CVPR 2023): a CLIP detector trained with semantic augmentations,
res4 feature offsets optimized to move source features along CLIP text directions."""
from .authors_checkpoint import (
    AuthorsCheckpointError,
    convert_authors_state,
    read_authors_checkpoint,
)
from .method import ClipGapMethod, ClipRCNNMethod
from .model import ClipGapRCNN
from .objective import augmentation_loss, optimization_loss, text_shifted_targets
from .offset_bank import (
    AugmentationBankError,
    SemanticAugmentationBank,
    build_augmentation_bank,
    check_prompts,
    domain_text_directions,
)
from .optimize import BANK_FILE, SemanticAugmentationHook, optimize_augmentations
from .step import augmentation_step, clip_embeddings, stack_crops

__all__ = [
    "AugmentationBankError", "AuthorsCheckpointError", "BANK_FILE", "ClipGapMethod",
    "ClipGapRCNN", "ClipRCNNMethod", "SemanticAugmentationBank", "SemanticAugmentationHook",
    "augmentation_loss", "augmentation_step", "build_augmentation_bank", "check_prompts",
    "clip_embeddings", "convert_authors_state", "domain_text_directions",
    "optimization_loss", "optimize_augmentations", "read_authors_checkpoint", "stack_crops",
    "text_shifted_targets",
]
