"""``tools/train_net.py``: train or evaluate any domaingen config with Detectron2's arguments."""
from detectron2.data.detection_utils import SizeMismatchError
from detectron2.engine import default_argument_parser

from domaingen.clip.weights import ClipWeightsError
from domaingen.data.datasets import DatasetAnnotationError, DatasetLayoutError
from domaingen.data.images import ImageDecodeError
from domaingen.modeling.augmentation.bank import AugmentationBankError

from .checkpoint import AtomicCheckpointer, CheckpointError
from .launch import launch
from .lock import OutputDirError, release_output_dir
from .setup import ConfigError, setup
from .trainer import Trainer, TrainingDivergedError

# Models with nothing to train: running them means evaluating them.
EVALUATE_ONLY = ("ZeroShotCLIPClassifier",)
# Errors about the user's input whose message says all: printed as one line, no traceback.
INPUT_ERRORS = (AugmentationBankError, CheckpointError, ClipWeightsError, ConfigError,
                DatasetAnnotationError, DatasetLayoutError, ImageDecodeError, OutputDirError,
                SizeMismatchError, TrainingDivergedError)


def main(args):
    """Train (or with ``--eval-only`` evaluate) the model the config describes."""
    cfg = setup(args)
    try:
        if args.eval_only or cfg.MODEL.META_ARCHITECTURE in EVALUATE_ONLY:
            if not cfg.DATASETS.TEST:
                raise ConfigError("DATASETS.TEST is empty: there is nothing to evaluate. Name "
                                  "the test sets, e.g. DATASETS.TEST "
                                  "\"('synthetic_dw_night_sunny_test',)\"")
            model = Trainer.build_model(cfg)
            AtomicCheckpointer(model, save_dir=cfg.OUTPUT_DIR, strict=True).resume_or_load(
                cfg.MODEL.WEIGHTS, resume=args.resume)
            return Trainer.test(cfg, model)
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        return trainer.train()
    finally:
        release_output_dir(cfg.OUTPUT_DIR)


def run(argv=None):
    """Parse Detectron2's standard arguments and launch ``main`` (1..N processes, or torchrun).
    An error in the user's input ends the run with its one-line message (exit status 1)."""
    args = default_argument_parser().parse_args(argv)
    try:
        launch(main, args)
    except INPUT_ERRORS as e:
        raise SystemExit(f"{type(e).__name__}: {e}") from None
