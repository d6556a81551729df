"""``tools/train_net.py``: train or evaluate any domaingen config with Detectron2's arguments."""
from detectron2.engine import default_argument_parser

from .checkpoint import AtomicCheckpointer
from .launch import launch
from .setup import setup
from .trainer import Trainer

# Models with nothing to train: running them means evaluating them.
EVALUATE_ONLY = ("ZeroShotCLIPClassifier",)


def main(args):
    """Train (or with ``--eval-only`` evaluate) the model the config describes."""
    cfg = setup(args)
    if args.eval_only or cfg.MODEL.META_ARCHITECTURE in EVALUATE_ONLY:
        model = Trainer.build_model(cfg)
        AtomicCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume)
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def run(argv=None):
    """Parse Detectron2's standard arguments and launch ``main`` (1..N processes, or torchrun)."""
    args = default_argument_parser().parse_args(argv)
    launch(main, args)
