"""Domain prompt labels: SPG stage I's per-domain CoOp contexts, as files stage II reads.

A file holds ``{"ctx": [n_ctx, width], "domain", "class_names", "clip_model"}`` and is read with
``weights_only=True``. Loading checks that the labels fit the stage II model (CLIP model, class
list, context shape) and cover every training domain, naming the file when they do not.
"""
import os
from typing import Dict, Sequence

import torch

from domaingen.utils.errors import InputError, load_torch_file
from domaingen.utils.files import atomic_write

KEYS = ("ctx", "domain", "class_names", "clip_model")


class DomainPromptError(InputError, ValueError):
    """Domain prompt labels that are missing or do not fit the model; names the file."""


def save_domain_prompt(path: str, ctx: torch.Tensor, domain: str, class_names: Sequence[str],
                       clip_model: str) -> None:
    """Write one domain's prompt label atomically."""
    data = {"ctx": ctx.detach().float().cpu().clone(), "domain": domain,
            "class_names": list(class_names), "clip_model": clip_model}
    atomic_write(path, lambda f: torch.save(data, f))


def _read(path: str) -> dict:
    if not os.path.isfile(path):
        raise DomainPromptError(
            f"domain prompt label {path} does not exist: run SPG stage I first "
            f"(tools/spg_pipeline.py does), or fix MODEL.SPG.DOMAIN_PROMPTS")
    data = load_torch_file(path, DomainPromptError, "domain prompt label")
    missing = [k for k in KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        raise DomainPromptError(f"{path} is not a domain prompt label: missing {missing}")
    return data


def load_domain_prompts(paths: Sequence[str], clip_model: str, class_names: Sequence[str],
                        ctx_shape: Sequence[int],
                        domains: Sequence[str]) -> Dict[str, torch.Tensor]:
    """Domain -> context [n_ctx, width] for every file of ``paths``, checked against the model
    and required for every name in ``domains``."""
    prompts: Dict[str, torch.Tensor] = {}
    for path in paths:
        data = _read(path)
        if data["clip_model"] != clip_model:
            raise DomainPromptError(
                f"{path} was learned with CLIP {data['clip_model']!r}, but MODEL.CLIP.NAME is "
                f"{clip_model!r}: rerun stage I with this model")
        if list(data["class_names"]) != list(class_names):
            raise DomainPromptError(
                f"{path} was learned for classes {list(data['class_names'])}, not this dataset's "
                f"{list(class_names)}: rerun stage I on this dataset")
        if tuple(data["ctx"].shape) != tuple(ctx_shape):
            raise DomainPromptError(f"{path}: context of shape {tuple(data['ctx'].shape)}, the "
                                    f"model expects {tuple(ctx_shape)} (MODEL.PROMPT.N_CTX)")
        if data["domain"] in prompts:
            raise DomainPromptError(f"{path}: a second label for domain {data['domain']!r}")
        prompts[data["domain"]] = data["ctx"].float()
    missing = [d for d in domains if d not in prompts]
    if missing:
        raise DomainPromptError(
            f"no domain prompt label for training domain(s) {missing}; MODEL.SPG.DOMAIN_PROMPTS "
            f"lists {list(paths)} covering {sorted(prompts)}")
    return prompts
