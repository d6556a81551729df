"""The bank of learned semantic augmentations of CLIP the Gap."""
import logging
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from domaingen.clip import encode_prompts
from domaingen.utils.errors import InputError, load_torch_file
from domaingen.utils.files import atomic_write

logger = logging.getLogger(__name__)


class AugmentationBankError(InputError, ValueError):
    """A bank that does not fit the config or the CLIP model; the message names the file."""


def check_prompts(source_prompt: str, target_prompts: Sequence[str]) -> None:
    """Reject empty or repeated domain prompts (a repeated prompt would learn the same offset)."""
    if not source_prompt or not source_prompt.strip():
        raise AugmentationBankError("MODEL.CLIP_GAP.SOURCE_PROMPT is empty")
    if not target_prompts:
        raise AugmentationBankError("MODEL.CLIP_GAP.TARGET_PROMPTS is empty: need at least one "
                                    "target domain prompt")
    stripped = [p.strip() for p in target_prompts]
    if any(not p for p in stripped):
        raise AugmentationBankError(f"MODEL.CLIP_GAP.TARGET_PROMPTS has an empty prompt: "
                                    f"{list(target_prompts)}")
    repeated = sorted({p for p in stripped if stripped.count(p) > 1})
    if repeated:
        raise AugmentationBankError(f"MODEL.CLIP_GAP.TARGET_PROMPTS repeats {repeated}")
    if source_prompt.strip() in stripped:
        raise AugmentationBankError(f"the source prompt {source_prompt!r} is also a target prompt")


def domain_text_directions(clip_model: nn.Module, model_name: str, source_prompt: str,
                           target_prompts: Sequence[str]) -> torch.Tensor:
    """d_j = normalise(normalise(T(q_t^j)) - normalise(T(q_s))), one row per target prompt."""
    embeddings = encode_prompts(clip_model, model_name, [source_prompt, *target_prompts], ["{}"])
    return F.normalize(embeddings[1:] - embeddings[:1], dim=-1)


class SemanticAugmentationBank(nn.Module):
    """M learnable feature offsets A_j (zero-initialised, shape [M, C, H, W]), one per target
    domain prompt, with the constant CLIP text directions d_j they are trained to follow.

    ``optimized_iters`` records how many optimization-step iterations shaped the offsets; it is
    saved with the detector so ``--resume`` does not optimise again.
    """

    def __init__(self, source_prompt: str, target_prompts: Sequence[str],
                 text_directions: torch.Tensor, feature_shape: Sequence[int],
                 clip_name: str = ""):
        super().__init__()
        check_prompts(source_prompt, target_prompts)
        if text_directions.shape[0] != len(target_prompts):
            raise AugmentationBankError(f"{text_directions.shape[0]} text directions for "
                                        f"{len(target_prompts)} target prompts")
        self.source_prompt = source_prompt
        self.target_prompts = list(target_prompts)
        self.clip_name = clip_name
        self.offsets = nn.Parameter(torch.zeros(len(target_prompts), *feature_shape),
                                    requires_grad=False)
        self.register_buffer("text_directions", text_directions.float().clone())
        self.register_buffer("optimized_iters", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return self.offsets.shape[0]

    def channel_offsets(self, indices: torch.Tensor) -> torch.Tensor:
        """The spatial means of A_j for each index: [len(indices), C]; what training injects."""
        return self.offsets.detach().mean(dim=(2, 3))[indices]

    @torch.no_grad()
    def randomize_directions(self, seed: int) -> None:
        """The random-direction control: each entry becomes a spatially constant offset along a
        random (seeded, Gaussian) channel direction with the norm of the entry's channel mean, so
        training injects offsets as large as the learned ones, in directions no text chose."""
        generator = torch.Generator().manual_seed(seed)
        norms = self.offsets.mean(dim=(2, 3)).norm(dim=1, keepdim=True)
        directions = F.normalize(torch.randn(norms.shape[0], self.offsets.shape[1],
                                             generator=generator), dim=1)
        constant = (directions * norms.cpu()).to(self.offsets)[:, :, None, None]
        self.offsets.copy_(constant.expand_as(self.offsets))

    def to_file_dict(self) -> dict:
        return {
            "offsets": self.offsets.detach().cpu(),
            "text_directions": self.text_directions.cpu(),
            "optimized_iters": int(self.optimized_iters),
            "source_prompt": self.source_prompt,
            "target_prompts": list(self.target_prompts),
            "clip_name": self.clip_name,
        }

    def save(self, path: str) -> None:
        """Write the offsets, prompts, text directions and CLIP name to ``path`` atomically."""
        data = self.to_file_dict()
        atomic_write(path, lambda f: torch.save(data, f))

    def load(self, path: str, atol: float = 1e-4) -> None:
        """Load offsets saved by :meth:`save`, checking that they belong to this config/CLIP."""
        data = load_torch_file(path, AugmentationBankError, "augmentation bank")
        if not isinstance(data, dict):
            raise AugmentationBankError(f"augmentation bank {path} holds a "
                                        f"{type(data).__name__}, not a bank's dict")
        missing = {"offsets", "text_directions", "source_prompt", "target_prompts"} - set(data)
        if missing:
            raise AugmentationBankError(f"augmentation bank {path} lacks {sorted(missing)}")
        if data["source_prompt"] != self.source_prompt or \
                list(data["target_prompts"]) != self.target_prompts:
            raise AugmentationBankError(
                f"augmentation bank {path} was trained for other prompts: source "
                f"{data['source_prompt']!r}, targets {list(data['target_prompts'])}; "
                "the config has "
                f"source {self.source_prompt!r}, targets {self.target_prompts}")
        if tuple(data["offsets"].shape) != tuple(self.offsets.shape):
            raise AugmentationBankError(
                f"augmentation bank {path} has offsets of shape {tuple(data['offsets'].shape)}; "
                f"this model needs {tuple(self.offsets.shape)} (M prompts x res4 channels x "
                f"OPT_INPUT_SIZE/16 x OPT_INPUT_SIZE/16)")
        saved_dirs = data["text_directions"]
        if saved_dirs.shape != self.text_directions.shape or not torch.allclose(
                saved_dirs, self.text_directions.cpu(), atol=atol):
            raise AugmentationBankError(
                f"augmentation bank {path} was optimised with another CLIP model "
                f"({data.get('clip_name') or 'unknown'}): its text directions differ from those of "
                f"MODEL.CLIP.NAME={self.clip_name!r} with the configured weights")
        with torch.no_grad():
            self.offsets.copy_(data["offsets"])
            self.optimized_iters.fill_(int(data.get("optimized_iters", 0)))
        logger.info(f"Loaded {len(self)} semantic augmentations from {path}")


def build_augmentation_bank(cfg, clip_model: nn.Module, res4_channels: int,
                            path: Optional[str] = None) -> SemanticAugmentationBank:
    """The bank ``MODEL.CLIP_GAP`` describes, with text directions from ``clip_model``."""
    c = cfg.MODEL.CLIP_GAP
    check_prompts(c.SOURCE_PROMPT, c.TARGET_PROMPTS)
    if c.OPT_INPUT_SIZE % 16:
        raise ValueError(f"MODEL.CLIP_GAP.OPT_INPUT_SIZE={c.OPT_INPUT_SIZE} must be a multiple "
                         f"of 16 (the res4 stride)")
    roi_side = cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION
    if c.OPT_INPUT_SIZE != 16 * roi_side:
        raise ValueError(f"MODEL.CLIP_GAP.OPT_INPUT_SIZE={c.OPT_INPUT_SIZE} must be 16 x "
                         f"MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = {16 * roi_side}: V_b (layer4 + "
                         f"attention pool) takes res4 maps of the ROI size")
    directions = domain_text_directions(clip_model, cfg.MODEL.CLIP.NAME, c.SOURCE_PROMPT,
                                        c.TARGET_PROMPTS)
    side = c.OPT_INPUT_SIZE // 16
    bank = SemanticAugmentationBank(c.SOURCE_PROMPT, c.TARGET_PROMPTS, directions,
                                    (res4_channels, side, side), cfg.MODEL.CLIP.NAME)
    if path:
        bank.load(path)
    return bank
