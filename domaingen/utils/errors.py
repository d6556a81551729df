"""The base class of every error about the user's input, and the one loader of torch files.

An :class:`InputError` says everything in its message (the file, key or value, and what to do):
every tool ends with that one line and no traceback (``domaingen.engine.cli.one_line_errors``).
Each subclass keeps a builtin base too (``ValueError``, ``FileNotFoundError``...), so callers
that catch those still do.
"""
import pickle
from typing import Type


class InputError(Exception):
    """An error in a file, config key or value the user gave; the message names it."""


def load_torch_file(path: str, error: Type[InputError], what: str, *,
                    allow_pickle: bool = False):
    """``torch.load(path)`` on the CPU with ``weights_only=True`` (unless ``allow_pickle``);
    a missing, truncated or pickled file raises ``error`` with a message that names ``what``
    and ``path``."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a directory, not a file") from None
    except pickle.UnpicklingError as e:
        # A real pickle naming classes fails on "Unsupported global"; garbage bytes otherwise.
        if "Unsupported global" not in str(e):
            raise error(f"{what} {path} is not a readable checkpoint (truncated, or not written by "
                        f"torch.save): {e}") from e
        detail = next((line.strip() for line in str(e).splitlines()
                       if "Unsupported global" in line), "")
        raise error(f"{what} {path} needs arbitrary unpickling to load, which domaingen refuses "
                    f"(weights_only=True). Re-save it with tensors, numbers and strings only, "
                    f"e.g. torch.save(model.state_dict(), path). Detail: {detail}") from e
    except Exception as e:  # RuntimeError, EOFError, KeyError... on truncated or foreign bytes
        raise error(f"{what} {path} is not a readable checkpoint (truncated, or not written by "
                    f"torch.save): {e}") from e
