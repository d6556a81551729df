"""SPG's parts: the prompt generator and discriminator (a conditional LSGAN) and the domain
prompt labels stage I writes and stage II reads."""
from .domain_prompts import DomainPromptError, load_domain_prompts, save_domain_prompt
from .networks import (
    PromptDiscriminator,
    PromptGenerator,
    clip_gradients_per_parameter,
    lsgan_loss,
)

__all__ = [
    "DomainPromptError", "PromptDiscriminator", "PromptGenerator", "clip_gradients_per_parameter",
    "load_domain_prompts", "lsgan_loss", "save_domain_prompt",
]
