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

from domaingen.utils.files import atomic_write
from domaingen.utils.logs import FILE_ONLY
from domaingen.utils.process import quiet_library_imports

from .checkpoint import AtomicCheckpointer
from .console import run_logging
from .lock import lock_output_dir, release_output_dir
from .registry import method_of
from .setup import ConfigError, check_datasets
from .trainer import Trainer

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run leaves besides its OUTPUT_DIR."""

    results: Optional[dict]  # test results by dataset name (None when nothing was tested)
    model: Any  # the trained model (with the weights selected on validation) or evaluated one


def log_outputs(output_dir: str) -> None:
    """One line naming the result tables, charts and final weights the run left."""
    if not comm.is_main_process() or not os.path.isdir(output_dir):
        return
    names = sorted(n for n in os.listdir(output_dir) if n.startswith("results.")
                   or n.endswith(".png") or n in ("model_final.pth", "model_best.pth"))
    if names:
        logger.info(f"Outputs in {output_dir}: {', '.join(names)}; the full log in log.txt")


@contextlib.contextmanager
def output_dir_session(cfg, args=None, eval_only: bool = False, verbose: bool = False):
    """OUTPUT_DIR locked (main process) and logged to for the duration (:mod:`.console`); the
    config written to ``config.yaml`` atomically and the RNGs seeded as Detectron2's
    ``default_setup`` does."""
    taken_over = lock_output_dir(cfg.OUTPUT_DIR) if comm.is_main_process() else ""
    try:
        with run_logging(cfg.OUTPUT_DIR, verbose):
            if taken_over:
                logger.info(taken_over)
            logger.info(f"Rank of current process: {comm.get_rank()}. World size: "
                        f"{comm.get_world_size()}", extra=FILE_ONLY)
            with quiet_library_imports():  # it imports torch's extension module
                environment = collect_env_info()
            logger.info("Environment info:\n" + environment, extra=FILE_ONLY)
            if args is not None:
                logger.info(f"Command line arguments: {args}", extra=FILE_ONLY)
            logger.info(f"Config:\n{cfg.dump()}", extra=FILE_ONLY)
            if comm.is_main_process():
                path = os.path.join(cfg.OUTPUT_DIR, "config.yaml")
                atomic_write(path, lambda f: f.write(cfg.dump().encode()))
            logger.info(f"{cfg.MODEL.META_ARCHITECTURE} on {cfg.MODEL.DEVICE}, "
                        f"{comm.get_world_size()} process(es); outputs, config.yaml and the full "
                        f"log.txt in {cfg.OUTPUT_DIR}")
            seed_all_rng(None if cfg.SEED < 0 else cfg.SEED + comm.get_rank())
            if not eval_only:
                torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK
            yield
    finally:
        release_output_dir(cfg.OUTPUT_DIR)


def run(cfg, *, resume: bool = False, eval_only: bool = False, args=None,
        verbose: bool = False) -> RunResult:
    """Train ``cfg`` (or evaluate it: ``eval_only``, or a method with nothing to train) in its
    OUTPUT_DIR; ``resume`` continues from its last checkpoint. ``args``, the command line, is
    logged; ``verbose`` prints all of log.txt on the console too. Errors in the user's input
    raise :class:`~domaingen.utils.errors.InputError`."""
    check_datasets(cfg)
    cfg = cfg.clone()
    cfg.freeze()
    evaluate = eval_only or not method_of(cfg).trains
    with output_dir_session(cfg, args, eval_only=evaluate, verbose=verbose):
        if evaluate:
            if not cfg.DATASETS.TEST:
                raise ConfigError("DATASETS.TEST is empty: there is nothing to evaluate. Name "
                                  "the test sets, e.g. DATASETS.TEST "
                                  "\"('synthetic_dw_night_sunny_test',)\"")
            model = Trainer.build_model(cfg)
            AtomicCheckpointer(model, save_dir=cfg.OUTPUT_DIR, strict=True).resume_or_load(
                cfg.MODEL.WEIGHTS, resume=resume)
            results = Trainer.test(cfg, model)
            log_outputs(cfg.OUTPUT_DIR)
            return RunResult(results, model)
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=resume)
        results = trainer.train()
        log_outputs(cfg.OUTPUT_DIR)
        return RunResult(results, trainer.model)
