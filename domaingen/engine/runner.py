"""The one way to run a config: ``run(cfg)`` trains or evaluates it in its OUTPUT_DIR.

Every tool that trains or evaluates goes through it (``tools/train_net.py`` and the method
pipelines, the evidence runner), so every run gets the same guarantees: registered dataset names,
one writer per OUTPUT_DIR (:mod:`domaingen.engine.lock`), ``log.txt``, an atomically written
``config.yaml``, and the seeding of Detectron2's ``default_setup``.
"""
import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Optional

import torch
from detectron2.utils import comm
from detectron2.utils.collect_env import collect_env_info
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

from domaingen.utils.files import atomic_write

from .checkpoint import AtomicCheckpointer
from .lock import lock_output_dir, release_output_dir
from .registry import method_of
from .setup import ConfigError, check_datasets
from .trainer import Trainer

logger = logging.getLogger(__name__)

LOGGERS = ("detectron2", "fvcore", "domaingen")


@dataclass
class RunResult:
    """What a run leaves besides its OUTPUT_DIR."""

    results: Optional[dict]  # test results by dataset name (None when nothing was tested)
    model: Any  # the trained model (with the weights selected on validation) or evaluated one


def _log_to_file(output_dir: str) -> logging.Handler:
    """Console logging as Detectron2 sets it up, plus this run's ``log.txt`` (``log.txt.rankN``
    on the other processes) until the handler is removed."""
    rank = comm.get_rank()
    for name in LOGGERS:
        setup_logger(distributed_rank=rank, name=name, abbrev_name="dg" if name == "domaingen"
                     else None)
    filename = os.path.join(output_dir, "log.txt" + (f".rank{rank}" if rank else ""))
    os.makedirs(output_dir, exist_ok=True)
    handler = logging.FileHandler(filename)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(name)s %(levelname)s: %(message)s",
                                           datefmt="%m/%d %H:%M:%S"))
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    return handler


@contextlib.contextmanager
def output_dir_session(cfg, args=None, eval_only: bool = False):
    """OUTPUT_DIR locked (main process) and logged to for the duration; the config written to
    ``config.yaml`` atomically and the RNGs seeded as Detectron2's ``default_setup`` does."""
    taken_over = lock_output_dir(cfg.OUTPUT_DIR) if comm.is_main_process() else ""
    handler = None
    try:
        handler = _log_to_file(cfg.OUTPUT_DIR)
        if taken_over:
            logger.info(taken_over)
        logger.info(f"Rank of current process: {comm.get_rank()}. World size: "
                    f"{comm.get_world_size()}")
        logger.info("Environment info:\n" + collect_env_info())
        if args is not None:
            logger.info(f"Command line arguments: {args}")
        if comm.is_main_process():
            path = os.path.join(cfg.OUTPUT_DIR, "config.yaml")
            atomic_write(path, lambda f: f.write(cfg.dump().encode()))
            logger.info(f"Full config saved to {path}")
        seed_all_rng(None if cfg.SEED < 0 else cfg.SEED + comm.get_rank())
        if not eval_only:
            torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK
        yield
    finally:
        if handler is not None:
            for name in LOGGERS:
                logging.getLogger(name).removeHandler(handler)
            handler.close()
        release_output_dir(cfg.OUTPUT_DIR)


def run(cfg, *, resume: bool = False, eval_only: bool = False, args=None) -> RunResult:
    """Train ``cfg`` (or evaluate it: ``eval_only``, or a method with nothing to train) in its
    OUTPUT_DIR; ``resume`` continues from its last checkpoint. ``args``, the command line, is
    logged. Errors in the user's input raise :class:`~domaingen.utils.errors.InputError`."""
    check_datasets(cfg)
    cfg = cfg.clone()
    cfg.freeze()
    evaluate = eval_only or not method_of(cfg).trains
    with output_dir_session(cfg, args, eval_only=evaluate):
        if evaluate:
            if not cfg.DATASETS.TEST:
                raise ConfigError("DATASETS.TEST is empty: there is nothing to evaluate. Name "
                                  "the test sets, e.g. DATASETS.TEST "
                                  "\"('synthetic_dw_night_sunny_test',)\"")
            model = Trainer.build_model(cfg)
            AtomicCheckpointer(model, save_dir=cfg.OUTPUT_DIR, strict=True).resume_or_load(
                cfg.MODEL.WEIGHTS, resume=resume)
            return RunResult(Trainer.test(cfg, model), model)
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=resume)
        results = trainer.train()
        return RunResult(results, trainer.model)
