"""Reading CLIP weights from local files in OpenAI's and open_clip's formats.

Supported files:
  * a state dict saved with ``torch.save`` (open_clip or OpenAI key layout, optionally wrapped in
    ``{"state_dict": ...}`` and/or prefixed with ``module.``), or a ``.safetensors`` file;
  * an OpenAI TorchScript archive (the ``RN101.pt`` files OpenAI publishes). It is converted once
    to a plain state dict in the cache directory; every later load reads that with
    ``weights_only=True``.
"""
import hashlib
import logging
import os
import zipfile
from typing import Dict, Tuple

import torch

from domaingen.utils.errors import InputError, load_torch_file
from domaingen.utils.files import atomic_write

logger = logging.getLogger(__name__)

# Buffers OpenAI's TorchScript models carry besides the weights; their presence marks the format.
OPENAI_METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")


class ClipWeightsError(InputError, RuntimeError):
    """A CLIP weights file that cannot be used; the message names the file and the problem."""


def default_cache_dir() -> str:
    """``$DOMAINGEN_CACHE``, else ``~/.cache/domaingen``."""
    return os.getenv("DOMAINGEN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                        "domaingen")


def is_torchscript_archive(path: str) -> bool:
    """TorchScript archives are zip files with a ``code/`` folder; ``torch.save`` files have
    none."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name or name.startswith("code/") for name in archive.namelist())


def convert_torchscript_archive(path: str, cache_dir: str) -> str:
    """Convert an OpenAI TorchScript archive to a state dict file once; return the cached path."""
    stat = os.stat(path)
    key = hashlib.sha1(f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    name = os.path.splitext(os.path.basename(path))[0]
    cached = os.path.join(cache_dir, f"{name}-{key.hexdigest()[:12]}.state_dict.pt")
    if os.path.isfile(cached):
        return cached
    logger.info(f"Converting TorchScript archive {path} to a state dict at {cached} (once).")
    try:
        scripted = torch.jit.load(path, map_location="cpu")
    except Exception as e:
        raise ClipWeightsError(f"CLIP weights file {path} looks like a TorchScript archive but "
                               f"could not be read: {e}") from e
    state_dict = {k: v.detach().clone() for k, v in scripted.state_dict().items()}
    atomic_write(cached, lambda f: torch.save(state_dict, f))
    return cached


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read a plain state dict with ``weights_only=True``; refuse anything that needs unpickling."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return dict(load_file(path, device="cpu"))
    checkpoint = load_torch_file(path, ClipWeightsError, "CLIP weights file")
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not all(
            isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ClipWeightsError(f"CLIP weights file {path} does not hold a state dict "
                               f"(a mapping from parameter names to tensors).")
    if checkpoint and all(k.startswith("module.") for k in checkpoint):
        checkpoint = {k[len("module."):]: v for k, v in checkpoint.items()}
    return checkpoint


def load_weights_file(path: str, cache_dir: str) -> Tuple[Dict[str, torch.Tensor], bool]:
    """Return ``(state_dict, is_openai_format)`` for a local weights file."""
    if not os.path.isfile(path):
        raise ClipWeightsError(f"CLIP weights file {path} does not exist.")
    source = path
    if is_torchscript_archive(path):
        source = convert_torchscript_archive(path, cache_dir)
    state_dict = read_state_dict(source)
    is_openai = any(k in state_dict for k in OPENAI_METADATA_KEYS) or source != path
    for key in OPENAI_METADATA_KEYS:
        state_dict.pop(key, None)
    return state_dict, is_openai


def check_compatible(model: torch.nn.Module, state_dict: Dict[str, torch.Tensor], path: str,
                     model_name: str) -> None:
    """Raise a readable error when ``state_dict`` was saved from another CLIP architecture."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches (e.g. {'; '.join(mismatched[:3])})")
    if problems:
        raise ClipWeightsError(
            f"CLIP weights file {path} does not match MODEL.CLIP.NAME={model_name!r}: "
            + ", ".join(problems) + ". Set MODEL.CLIP.NAME to the architecture the file was "
            "saved from (e.g. RN50, RN101, ViT-B-16).")
