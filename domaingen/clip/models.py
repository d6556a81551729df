"""Building open_clip CLIP models from a name and ``MODEL.CLIP.WEIGHTS``."""
import contextlib
import contextvars
import logging
import os
import socket
from typing import Callable, Dict

import open_clip
import torch

from .weights import ClipWeightsError, check_compatible, default_cache_dir, load_weights_file

logger = logging.getLogger(__name__)

CLIP_MEAN = tuple(open_clip.OPENAI_DATASET_MEAN)  # RGB, images in [0, 1]
CLIP_STD = tuple(open_clip.OPENAI_DATASET_STD)

_CONFIG_DIR = os.path.join(os.path.dirname(__file__), "model_configs")
_configs_added = False

# MODEL.CLIP.WEIGHTS names that a provider turns into a local weights file:
# name -> provider(model name, cache dir, seed) -> path. The miniature world registers "standin".
NAMED_WEIGHTS: Dict[str, Callable[[str, str, int], str]] = {}


def register_named_weights(name: str, provider: Callable[[str, str, int], str]) -> None:
    """Let ``MODEL.CLIP.WEIGHTS name`` mean the file ``provider(model name, cache dir, seed)``."""
    NAMED_WEIGHTS[name] = provider


def register_model_configs() -> None:
    """Make the tiny test/quickstart configs (``domaingen-tiny-RN``, ``-ViT``) known to
    open_clip."""
    global _configs_added
    if not _configs_added:
        open_clip.add_model_config(_CONFIG_DIR)
        _configs_added = True


def _resolve_quick_gelu(setting: str, weights_are_openai: bool) -> bool:
    setting = str(setting).lower()
    if setting not in ("auto", "true", "false"):
        raise ValueError("MODEL.CLIP.QUICK_GELU must be 'auto', 'true' or 'false', "
                         f"got {setting!r}")
    return weights_are_openai if setting == "auto" else setting == "true"


class _HideRandomInitNotice(logging.Filter):
    """open_clip warns on the root logger for every random-init model; we log our own line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


PRECISIONS = ("fp32", "fp16")


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"MODEL.CLIP.PRECISION must be one of {PRECISIONS}, got {precision!r}")


def image_input_dtype(visual: torch.nn.Module) -> torch.dtype:
    """The dtype a CLIP image tower (ViT or ModifiedResNet) takes: its first convolution's."""
    return visual.conv1.weight.dtype


def _create(name: str, quick_gelu: bool, seed: int, precision: str = "fp32") -> torch.nn.Module:
    register_model_configs()
    if name not in open_clip.list_models():
        raise ValueError(
            f"MODEL.CLIP.NAME={name!r} is not an open_clip model; known: "
            f"{', '.join(m for m in open_clip.list_models() if 'RN' in m or 'ViT-B' in m)}"
            ", ...")
    # A fixed seed makes every random-init build identical (and leaves the global RNG alone).
    notice_filter = _HideRandomInitNotice()
    logging.getLogger().addFilter(notice_filter)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # fp16: open_clip's OpenAI-style half precision (Conv/Linear/attention weights and the
            # projections in fp16, LayerNorms computed in fp32), converted from the fp32 init.
            model = open_clip.create_model(name, pretrained=None, force_quick_gelu=quick_gelu,
                                           precision=precision)
    finally:
        logging.getLogger().removeFilter(notice_filter)
    return (model.float() if precision == "fp32" else model).eval()


def _live_residual_branches(model: torch.nn.Module) -> torch.nn.Module:
    """Set every BatchNorm weight of a random-init model to 1.

    CLIP's ResNet zero-initialises the last BatchNorm of each block, a trick for training from
    scratch with live BatchNorm. Frozen (FrozenBatchNorm2d) stand-ins for pretrained models would
    keep those weights at zero forever, leaving only the shortcut paths.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.fill_(1.0)
    return model


def _network_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _resolve_pretrained_tag(name: str, tag: str) -> str:
    """Return a local path for an open_clip pretrained tag, or fail fast when offline."""
    cfg = open_clip.get_pretrained_cfg(name, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(name)
        raise ClipWeightsError(
            f"MODEL.CLIP.WEIGHTS={tag!r} is neither a local file nor an open_clip pretrained tag "
            f"for {name} (tags: {tags or 'none'}).")
    hub = cfg.get("hf_hub", "").rstrip("/")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            cached = try_to_load_from_cache(hub, filename)
            if isinstance(cached, str):
                return cached
    if not _network_reachable():
        source = cfg.get("url") or f"https://huggingface.co/{hub}"
        raise ClipWeightsError(
            f"MODEL.CLIP.WEIGHTS={tag!r} is an open_clip pretrained tag for {name}; fetching it "
            f"needs network access, which this machine does not have. Download {source} on a "
            f"connected machine, copy it here (e.g. weights/{name}-{tag}.pt) and set "
            f"MODEL.CLIP.WEIGHTS to that local path.")
    return open_clip.pretrained.download_pretrained(cfg)


def build_clip_model(name: str, weights: str = "", quick_gelu: str = "auto",
                     cache_dir: str = "", seed: int = 0,
                     precision: str = "fp32") -> torch.nn.Module:
    """Build an open_clip ``CLIP`` model in eval mode, in fp32 or (``precision="fp16"``) with
    OpenAI's half-precision weights.

    Args:
        name: open_clip model name (``RN101``, ``ViT-B-16``, ``domaingen-tiny-RN``...).
        weights: "" for random init (seeded); a local weights file; a name registered with
            :func:`register_named_weights` (``standin``: the semantic stand-in of ``name``
            trained from ``seed``, built once and cached in ``cache_dir``); or an open_clip
            pretrained tag such as ``openai``.
        quick_gelu: "auto" selects QuickGELU for OpenAI weights; "true"/"false" force it.
        cache_dir: where converted TorchScript archives are kept ("" = ``default_cache_dir()``).
        seed: seed of the random initialisation (handed to a named weights' provider).
        precision: "fp32" or "fp16" (fp16 runs on the CPU too).
    """
    _check_precision(precision)
    if weights in NAMED_WEIGHTS:
        weights = NAMED_WEIGHTS[weights](name, cache_dir, seed)
    if not weights:
        logger.info(f"CLIP {name}: random initialisation (seed {seed}, {precision})")
        return _live_residual_branches(
            _create(name, _resolve_quick_gelu(quick_gelu, False), seed, precision))
    if os.path.exists(weights) or os.sep in weights or weights.endswith((".pt", ".pth", ".bin")):
        path, from_tag_openai = weights, False
    else:
        from_tag_openai = bool(open_clip.get_pretrained_cfg(name, weights).get("quick_gelu"))
        path = _resolve_pretrained_tag(name, weights)
    state_dict, is_openai = load_weights_file(path, cache_dir or default_cache_dir())
    model = _create(name, _resolve_quick_gelu(quick_gelu, is_openai or from_tag_openai), seed,
                    precision)
    check_compatible(model, state_dict, path, name)
    model.load_state_dict(state_dict)  # copies into each parameter's own dtype
    logger.info(f"Loaded CLIP {name} weights from {path} ({precision})")
    return model.eval()


# Within one_clip_per_model(): (MODEL.CLIP values, precision) -> the CLIP built for them.
_SHARED_BUILDS: contextvars.ContextVar = contextvars.ContextVar("shared_clip_builds",
                                                               default=None)


@contextlib.contextmanager
def one_clip_per_model():
    """Within this block :func:`build_clip_from_cfg` builds each CLIP once and hands the same
    model to every caller: the parts a model cuts from CLIP (the detector's backbone, ROI head and
    text directions) come from one build, one read of the weights file. Re-entrant."""
    if _SHARED_BUILDS.get() is not None:
        yield
        return
    token = _SHARED_BUILDS.set({})
    try:
        yield
    finally:
        _SHARED_BUILDS.reset(token)


def build_clip_from_cfg(cfg, precision: str = "fp32") -> torch.nn.Module:
    """``build_clip_model`` from the ``MODEL.CLIP`` config node (once per model within
    :func:`one_clip_per_model`). ``precision`` is the caller's: the classifiers pass
    ``MODEL.CLIP.PRECISION``, the detectors (which train CLIP layers) fp32."""
    c = cfg.MODEL.CLIP
    args = (c.NAME, c.WEIGHTS, c.QUICK_GELU, c.CACHE_DIR, c.INIT_SEED, precision)
    shared = _SHARED_BUILDS.get()
    if shared is None:
        return build_clip_model(*args)
    if args not in shared:
        shared[args] = build_clip_model(*args)
    return shared[args]
