"""The SPG authors' released stage I labels (renytek13/Soft-Prompt-Generation, ``prompt_labels/``).

Their stage I saves, per domain, the learned CoOp context as a bare tensor ``[n_ctx, width]`` in
CLIP's precision (fp16), in ``prompt_labels/<Dataset>/<backbone>/seed_1/<Dataset>_CoOp_<letter>.pt``
(released: PACS, RN50 and ViT-B16). A folder of such files replaces our stage I: the files of the
training domains are found by the authors' domain letters and checked against the model. Bare
tensors carry no CLIP name or class list, so only their shape can be checked.
"""
import logging
import os
from typing import Dict, Sequence, Tuple

import torch

from domaingen.utils.errors import load_torch_file

from .domain_prompts import DomainPromptError

logger = logging.getLogger(__name__)

# Our dataset key -> (the authors' dataset name, our domain -> their domain letter), from their
# train.py (--target-domains / --source-domains letters).
AUTHORS_DATASETS: Dict[str, Tuple[str, Dict[str, str]]] = {
    "pacs": ("PACS", {"art_painting": "a", "cartoon": "c", "photo": "p", "sketch": "s"}),
    "vlcs": ("VLCS", {"caltech": "c", "labelme": "l", "pascal": "p", "sun": "s"}),
    "office_home": ("OfficeHome", {"art": "a", "clipart": "c", "product": "p", "real_world": "r"}),
    "terra_incognita": ("TerraIncognita", {"location_100": "1", "location_38": "2",
                                           "location_43": "3", "location_46": "4"}),
    "domainnet": ("DomainNet", {"clipart": "c", "infograph": "i", "painting": "p",
                                "quickdraw": "q", "real": "r", "sketch": "s"}),
}


def authors_prompt_file(directory: str, dataset: str, domain: str) -> str:
    """The authors' file name for the label of ``domain`` of ``dataset`` (our names)."""
    if dataset not in AUTHORS_DATASETS or domain not in AUTHORS_DATASETS[dataset][1]:
        raise DomainPromptError(
            f"MODEL.SPG.AUTHORS_DOMAIN_PROMPTS: the authors' labels exist for the domains of "
            f"{sorted(AUTHORS_DATASETS)} only, not for {dataset!r} domain {domain!r}")
    name, letters = AUTHORS_DATASETS[dataset]
    return os.path.join(directory, f"{name}_CoOp_{letters[domain]}.pt")


def _read_bare_tensor(path: str, ctx_shape: Sequence[int], clip_model: str) -> torch.Tensor:
    ctx = load_torch_file(path, DomainPromptError, "domain prompt label")
    if not isinstance(ctx, torch.Tensor):
        raise DomainPromptError(
            f"{path} holds a {type(ctx).__name__}, not the authors' bare context tensor "
            f"[n_ctx, width]; labels written by our stage I go in MODEL.SPG.DOMAIN_PROMPTS")
    if not ctx.is_floating_point():
        raise DomainPromptError(f"{path}: context of dtype {ctx.dtype}, expected a floating "
                                f"point tensor (the authors' are float16)")
    n_ctx, width = ctx_shape
    if ctx.dim() != 2 or ctx.shape[1] != width:
        raise DomainPromptError(
            f"{path}: context of shape {tuple(ctx.shape)}, but MODEL.CLIP.NAME={clip_model!r} has "
            f"text width {width}: expected [{n_ctx}, {width}] (the labels were learned with "
            f"another CLIP)")
    if ctx.shape[0] != n_ctx:
        raise DomainPromptError(f"{path}: {ctx.shape[0]} context vectors, but "
                                f"MODEL.PROMPT.N_CTX is {n_ctx}")
    return ctx.float().clone()  # fp16 -> fp32 is exact; clone drops the saved parent storage


def load_authors_domain_prompts(directory: str, sources: Sequence[Tuple[str, str]],
                                ctx_shape: Sequence[int],
                                clip_model: str) -> Dict[str, torch.Tensor]:
    """Domain -> context [n_ctx, width] for every (dataset, domain) of ``sources``, read from the
    authors' files in ``directory``."""
    if not os.path.isdir(directory):
        raise DomainPromptError(
            f"MODEL.SPG.AUTHORS_DOMAIN_PROMPTS={directory!r} is not a folder; give the folder of "
            f"the authors' <Dataset>_CoOp_<letter>.pt files, e.g. "
            f"prompt_labels/PACS/ViT-B16/seed_1")
    prompts = {}
    for dataset, domain in sources:
        path = authors_prompt_file(directory, dataset, domain)
        if not os.path.isfile(path):
            raise DomainPromptError(
                f"no authors' label for training domain {domain!r}: {path} does not exist "
                f"(their file for {dataset} domain {domain!r} is "
                f"{os.path.basename(path)})")
        prompts[domain] = _read_bare_tensor(path, ctx_shape, clip_model)
    logger.info(f"SPG: the authors' domain prompt labels from {directory} for "
                f"{sorted(prompts)}; bare tensors carry no CLIP name: they must come from "
                f"{clip_model} (their folder names the backbone, e.g. ViT-B16)")
    return prompts
