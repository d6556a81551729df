"""SPG (Bai et al., ECCV 2024): soft prompt generation. Stage I learns a CoOp prompt per source
domain; stage II trains a conditional GAN whose generator writes a prompt per image."""
from .authors_prompts import AUTHORS_DATASETS, authors_prompt_file, load_authors_domain_prompts
from .domain_prompts import DomainPromptError, load_domain_prompts, save_domain_prompt
from .method import SPGMethod
from .model import SPGClassifier
from .networks import (
    PromptDiscriminator,
    PromptGenerator,
    clip_gradients_per_parameter,
    lsgan_loss,
)
from .run_step import SPGTrainer

__all__ = [
    "AUTHORS_DATASETS", "DomainPromptError", "PromptDiscriminator", "PromptGenerator",
    "SPGClassifier", "SPGMethod", "SPGTrainer", "authors_prompt_file",
    "clip_gradients_per_parameter", "load_authors_domain_prompts", "load_domain_prompts",
    "lsgan_loss", "save_domain_prompt",
]
