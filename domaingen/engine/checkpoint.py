"""Checkpoints that are written atomically and read with ``weights_only=True``."""
import os
import pickle

import torch
from detectron2.checkpoint import DetectionCheckpointer

from domaingen.utils.files import atomic_write


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded; the message names the file and the problem."""


class AtomicCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer whose files and ``last_checkpoint`` tag are replaced atomically, and
    which loads every file with ``weights_only=True``."""

    def save(self, name: str, **kwargs) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {save_file}")
        atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        atomic_write(os.path.join(self.save_dir, "last_checkpoint"),
                     lambda f: f.write(last_filename_basename.encode()))

    def _load_file(self, filename: str):
        if filename.endswith((".pkl", ".pyth")):
            raise CheckpointError(
                f"{filename}: pickled model-zoo files need arbitrary unpickling, which domaingen "
                f"refuses. Convert it to a torch state dict (.pth) first.")
        return super()._load_file(filename)

    def _torch_load(self, filename: str):
        try:
            return torch.load(filename, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise CheckpointError(
                f"{filename} needs arbitrary unpickling to load, which domaingen refuses "
                f"(weights_only=True). Re-save it with tensors, numbers and strings only. "
                f"Detail: {str(e).splitlines()[0]}") from e
        except (RuntimeError, EOFError) as e:
            raise CheckpointError(f"{filename} is not a readable checkpoint (truncated or not "
                                  f"written by torch.save): {e}") from e
