"""SPG's parts: the prompt generator and discriminator (a conditional LSGAN) and the domain
prompt labels stage I writes and stage II reads (ours, or the authors' released ones)."""
from .authors_prompts import AUTHORS_DATASETS, authors_prompt_file, load_authors_domain_prompts
from .domain_prompts import DomainPromptError, load_domain_prompts, save_domain_prompt
from .networks import (
    PromptDiscriminator,
    PromptGenerator,
    clip_gradients_per_parameter,
    lsgan_loss,
)

__all__ = [
    "AUTHORS_DATASETS", "DomainPromptError", "PromptDiscriminator", "PromptGenerator",
    "authors_prompt_file", "clip_gradients_per_parameter", "load_authors_domain_prompts",
    "load_domain_prompts", "lsgan_loss", "save_domain_prompt",
]
