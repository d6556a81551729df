"""Checkpoints that are written atomically, read with ``weights_only=True`` and loaded only
when they fit: evaluation and ``--resume`` need every tensor the model saves, an initialisation
(``MODEL.WEIGHTS`` for training) may load partially and says how much."""
import errno
import glob
import logging
import os
import re

import torch
from detectron2.checkpoint import DetectionCheckpointer

from domaingen.utils.errors import InputError, load_torch_file
from domaingen.utils.files import atomic_write

logger = logging.getLogger(__name__)

# What atomic_write leaves behind when killed: ".<name>.<random>.tmp" next to the file.
TEMPORARY_PATTERNS = (".*.pth.*.tmp", ".last_checkpoint.*.tmp")


class CheckpointError(InputError, RuntimeError):
    """A checkpoint that cannot be loaded or saved; the message names the file and the problem."""


def _examples(keys) -> str:
    keys = list(keys)
    return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")


class AtomicCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer whose files and ``last_checkpoint`` tag are replaced atomically,
    which loads every file with ``weights_only=True``, and which checks what it loads.

    Every tensor of the model's ``state_dict()`` must come from the file when ``strict``
    (evaluation) or when resuming; tensors a model deliberately leaves out of its state dict
    (the classifiers' frozen CLIP towers) are not expected. Otherwise (a training
    initialisation) a partial load is logged in one line with counts, and loading nothing is an
    error.
    """

    def __init__(self, model, save_dir: str = "", *, strict: bool = False, **kwargs):
        super().__init__(model, save_dir, **kwargs)
        self.strict = strict
        self._resuming = False
        self._path = ""

    # ------------------------------------------------------------------ saving

    def save(self, name: str, **kwargs) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        if hasattr(self.model, "model_name"):  # classifiers: their frozen CLIP is not saved
            data["clip_model_name"] = self.model.model_name
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {save_file}")
        try:
            atomic_write(save_file, lambda f: torch.save(data, f))
        except (OSError, RuntimeError) as e:
            # torch.save reports a failed write of its zip stream as a RuntimeError
            # ("unexpected pos"), the OSError only as its context.
            e = e if isinstance(e, OSError) else e.__context__
            if not isinstance(e, OSError):
                raise
            previous = (f"The previous checkpoint {self.get_checkpoint_file()} is intact"
                        if self.has_checkpoint() else "No checkpoint was written before")
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise CheckpointError(
                    f"The disk of OUTPUT_DIR {self.save_dir} is full: no space left to write "
                    f"{save_file}. {previous}; free space (or move the run to another disk), "
                    f"then continue with --resume.") from e
            raise CheckpointError(f"Cannot write {save_file} ({e.strerror or e}). {previous}.") \
                from e
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        atomic_write(os.path.join(self.save_dir, "last_checkpoint"),
                     lambda f: f.write(last_filename_basename.encode()))

    def remove_stale_temporaries(self) -> None:
        """Remove the temporary files of checkpoint writes that a killed run left behind (only
        this run writes OUTPUT_DIR: it holds the run lock)."""
        stale = [p for pattern in TEMPORARY_PATTERNS
                 for p in glob.glob(os.path.join(self.save_dir, pattern))]
        for path in stale:
            os.remove(path)
        if stale:
            logger.info(f"Removed {len(stale)} temporary file(s) of interrupted checkpoint "
                        f"writes: {_examples(stale)}")

    # ------------------------------------------------------------------ resuming

    def newest_checkpoint(self) -> str:
        """The checkpoint of OUTPUT_DIR with the highest iteration in its name (model_final
        first), or "" if there is none."""
        names = [os.path.basename(p) for p in glob.glob(os.path.join(self.save_dir, "model_*.pth"))]
        numbered = sorted(n for n in names if re.fullmatch(r"model_\d+\.pth", n))
        newest = "model_final.pth" if "model_final.pth" in names else (numbered or [""])[-1]
        return os.path.join(self.save_dir, newest) if newest else ""

    def last_checkpoint_file(self) -> str:
        """The file ``last_checkpoint`` names; CheckpointError if it names none or a missing one,
        saying what to do."""
        tag = os.path.join(self.save_dir, "last_checkpoint")
        path = self.get_checkpoint_file()
        if os.path.isfile(path):
            return path
        what = (f"names {os.path.basename(path)}, which does not exist"
                if os.path.basename(path) else "is empty")
        newest = self.newest_checkpoint()
        advice = (f"to resume from the newest checkpoint present, write its name into it "
                  f"(echo {os.path.basename(newest)} > {tag})" if newest else
                  "no checkpoint is present")
        raise CheckpointError(f"--resume: {tag} {what}; {advice}. To start over, delete {tag} "
                              f"or set another OUTPUT_DIR.")

    def resume_or_load(self, path: str, *, resume: bool = True):
        """Resume from ``last_checkpoint`` (everything must fit), else load ``path`` (the model
        only); stale temporary files of interrupted writes are removed first."""
        if self.save_dir and self.save_to_disk:
            self.remove_stale_temporaries()
        if resume and self.has_checkpoint():
            self._resuming = True
            try:
                return self.load(self.last_checkpoint_file())
            finally:
                self._resuming = False
        return self.load(path, checkpointables=[])

    # ------------------------------------------------------------------ loading

    def load(self, path: str, *args, **kwargs):
        model_name = type(self.model).__name__
        if not path and self.strict and self.model.state_dict():
            raise CheckpointError(
                f"No checkpoint to load (MODEL.WEIGHTS is empty): the {model_name} would be "
                f"evaluated with untrained weights. Set MODEL.WEIGHTS to a trained checkpoint, "
                f"e.g. MODEL.WEIGHTS <OUTPUT_DIR>/model_final.pth.")
        if path and os.path.isdir(path):
            raise CheckpointError(f"{path} is a folder, not a checkpoint (MODEL.WEIGHTS): name a "
                                  f"file, e.g. {os.path.join(path, 'model_final.pth')}")
        if path and "://" not in path and not os.path.isfile(path):
            raise CheckpointError(f"Checkpoint {path} does not exist (MODEL.WEIGHTS); a run's "
                                  f"checkpoints are <OUTPUT_DIR>/model_final.pth and "
                                  f"model_<iteration>.pth.")
        if not path and not self.model.state_dict():
            logger.info(f"The {model_name} has no trained tensors: nothing to load")
            return {}
        self._path = path
        return super().load(path, *args, **kwargs)

    def _load_model(self, checkpoint):
        in_file = {k[len("module."):] if k.startswith("module.") else k
                   for k in checkpoint["model"]}
        clip = (checkpoint.get("clip_model_name"), getattr(self.model, "model_name", None))
        self._other_clip = [f"{clip[0]!r} in the file, {clip[1]!r} in the model (MODEL.CLIP.NAME)"
                            ] if None not in clip and clip[0] != clip[1] else []
        incompatible = super()._load_model(checkpoint)
        saved = self.model.state_dict()
        # What the model saves and the file lacks (torch's count skips what modules fill in,
        # e.g. FrozenBatchNorm's statistics); tensors the model leaves out of its own state dict
        # (frozen CLIP towers) are never in a checkpoint.
        incompatible.missing_keys[:] = [k for k in saved if k not in in_file]
        self._num_tensors = len(saved)
        return incompatible

    def _log_incompatible_keys(self, incompatible) -> None:
        reshaped = {k: (file, model) for k, file, model in incompatible.incorrect_shapes}
        missing = [k for k in incompatible.missing_keys if k not in reshaped]
        unexpected = incompatible.unexpected_keys
        loaded = self._num_tensors - len(missing) - len(reshaped)
        shapes = [f"{k}: {f} in the file, {m} in the model" for k, (f, m) in reshaped.items()]
        parts = [(missing, "missing"), (unexpected, "unexpected"), (shapes, "of another shape"),
                 (self._other_clip, "other CLIP")]
        detail = "; ".join(f"{len(keys)} {what} ({_examples(keys)})"
                           for keys, what in parts if keys)
        if not detail:
            logger.info(f"Loaded all {loaded} tensors of the model from {self._path}")
            return
        model_name = type(self.model).__name__
        if self._resuming:
            raise CheckpointError(
                f"--resume: {self._path} does not fit the {model_name} this config builds: "
                f"{detail}. The config changed since that checkpoint was written: resume with "
                f"the run's own config ({os.path.join(self.save_dir, 'config.yaml')}) or set "
                f"another OUTPUT_DIR.")
        if self.strict or loaded <= 0:
            raise CheckpointError(
                f"{self._path} does not fit the {model_name} this config builds "
                f"({loaded} of its {self._num_tensors} tensors found): {detail}. Use the config "
                f"the checkpoint was trained with (its OUTPUT_DIR/config.yaml), e.g. the same "
                f"MODEL.META_ARCHITECTURE and MODEL.CLIP.NAME.")
        logger.warning(f"Initialised {loaded} of the model's {self._num_tensors} tensors from "
                       f"{self._path}, the others keep their initialisation: {detail}")

    def _load_file(self, filename: str):
        if filename.endswith((".pkl", ".pyth")):
            raise CheckpointError(
                f"{filename}: pickled model-zoo files need arbitrary unpickling, which domaingen "
                f"refuses. Convert it to a torch state dict (.pth) first.")
        return super()._load_file(filename)

    def _torch_load(self, filename: str):
        return load_torch_file(filename, CheckpointError, "checkpoint")
