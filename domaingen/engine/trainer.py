"""The one Trainer every domaingen method runs on."""
import logging
import os
import weakref

import torch
from detectron2.data import (
    DatasetCatalog,
    MetadataCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.data.common import AspectRatioGroupedDataset
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, TrainerBase
from detectron2.engine.hooks import EvalHook
from detectron2.evaluation import inference_on_dataset
from detectron2.solver import get_default_optimizer_params
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from domaingen.data.classification_loaders import (
    build_classification_test_loader,
    build_classification_train_loader,
)
from domaingen.data.detection_sets import detection_training_dicts
from domaingen.data.mappers import DetectionMapper
from domaingen.data.samplers import EagerGroupedLoader, ResumableTrainingSampler
from domaingen.evaluation import ClassificationEvaluator, DomainAPEvaluator, write_domain_tables
from domaingen.utils.errors import InputError

from .checkpoint import AtomicCheckpointer, CheckpointError
from .launch import create_ddp_model
from .registry import method_of
from .schedules import build_lr_scheduler
from .seeding import seed_step
from .selection import ResumableBestCheckpointer, check_selection_metric
from .setup import ConfigError
from .speed import apply_speed_options

logger = logging.getLogger(__name__)


class TrainingDivergedError(InputError, FloatingPointError):
    """The loss became NaN or infinite; the message names the iteration and the last good
    checkpoint."""


def is_classifier(cfg) -> bool:
    """Whether the config's method classifies images (else it detects objects)."""
    return method_of(cfg).task == "classification"


def epochs_to_iterations(cfg):
    """A copy of ``cfg`` whose epoch-based schedule (``SOLVER.EPOCHS``) is set in iterations."""
    size = len(get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=False))
    per_epoch = max(size // cfg.SOLVER.IMS_PER_BATCH, 1)  # Dassl's loader drops the last batch
    cfg = cfg.clone()
    cfg.defrost()
    cfg.SOLVER.MAX_ITER = cfg.SOLVER.EPOCHS * per_epoch
    cfg.SOLVER.WARMUP_ITERS = cfg.SOLVER.WARMUP_EPOCHS * per_epoch
    cfg.SOLVER.CHECKPOINT_PERIOD *= per_epoch
    cfg.TEST.EVAL_PERIOD *= per_epoch
    cfg.freeze()
    logger.info(f"{cfg.SOLVER.EPOCHS} epochs of {size} images at batch {cfg.SOLVER.IMS_PER_BATCH}: "
                f"{cfg.SOLVER.MAX_ITER} iterations ({per_epoch} per epoch)")
    return cfg


def detection_test_dicts(cfg, dataset_name: str) -> list:
    """The images of a detection test set, without those holding no annotated object when the
    set is listed in ``DATASETS.DROP_EMPTY_TEST_IMAGES`` (the CLIP-the-Gap authors' protocol)."""
    dicts = DatasetCatalog.get(dataset_name)
    if dataset_name not in cfg.DATASETS.DROP_EMPTY_TEST_IMAGES:
        return dicts
    kept = [d for d in dicts if d.get("annotations")]
    logger.info(f"{dataset_name}: evaluating {len(kept)} of {len(dicts)} images "
                f"({len(dicts) - len(kept)} without objects left out, "
                f"DATASETS.DROP_EMPTY_TEST_IMAGES)")
    return kept


def set_schedule_position(scheduler, iteration: int) -> None:
    """Move an LR scheduler to ``iteration`` as if it had been stepped that many times."""
    scheduler.last_epoch = iteration
    lrs = scheduler.get_lr()
    for group, lr in zip(scheduler.optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = list(lrs)


class Trainer(DefaultTrainer):
    """Detectron2's DefaultTrainer with CPU-capable DDP, atomic checkpoints, per-domain
    evaluators and a cross-domain summary table (``results.md``/``.csv`` + chart) after tests.

    Exact resume: with ``SEED >= 0`` every step is seeded from (SEED, iteration, rank) and every
    training stream is a resumable sampler restarted at ``iteration * IMS_PER_BATCH``, so a run
    resumed from any checkpoint ends with the weights of an uninterrupted one. This holds with
    ``DATALOADER.NUM_WORKERS 0`` (loader workers keep their own RNG), without skipped images,
    and for detection with one image orientation per dataset (Detectron2 groups batches by
    aspect ratio and a resumed run starts with empty groups).
    """

    def __init__(self, cfg):
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        if not cfg.DATASETS.TRAIN:
            raise ConfigError("DATASETS.TRAIN is empty: name the training sets, e.g. "
                              "DATASETS.TRAIN \"('synthetic_dw_daytime_clear_train',)\" (or "
                              "evaluate with --eval-only)")
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        if cfg.SOLVER.EPOCHS > 0:
            cfg = epochs_to_iterations(cfg)
        model = self.build_model(cfg)
        loaders = []  # every training loader, whose samplers restart where a resumed run stands

        def build_train_loader(cfg, seed_offset: int = 0):
            loaders.append(self.build_train_loader(cfg, seed_offset))
            return loaders[-1]

        run_step = method_of(cfg).build_run_step(cfg, model, build_train_loader)
        if run_step is not None:
            self._trainer, optimizer = run_step
        else:
            loader = build_train_loader(cfg)
            optimizer = self.build_optimizer(cfg, model)
            model = create_ddp_model(model, sync_buffers=False)
            self._trainer = (
                AMPTrainer(model, loader, optimizer,
                           precision=getattr(torch, cfg.SOLVER.AMP.PRECISION))
                if cfg.SOLVER.AMP.ENABLED else SimpleTrainer(model, loader, optimizer))
        self._samplers = [s for loader in loaders
                          for s in getattr(loader, "resumable_samplers", ())]
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = AtomicCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @classmethod
    def build_model(cls, cfg):
        return apply_speed_options(super().build_model(cfg), cfg)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        """The method's scheduler, else Detectron2's or Dassl's epoch-wise
        ``EpochWarmupCosineLR``."""
        scheduler = method_of(cfg).build_lr_scheduler(cfg, optimizer)
        return scheduler if scheduler is not None else build_lr_scheduler(cfg, optimizer)

    def build_hooks(self):
        # The method's hooks first: before the LR scheduler and checkpointer see an iteration.
        hooks = method_of(self.cfg).hooks(self.cfg) + super().build_hooks()
        if self.cfg.DATASETS.VAL:
            # Periodic evaluation on the validation sets (the DG protocol's model selection);
            # the test sets are evaluated once, after training, with the selected weights.
            index = next(i for i, h in enumerate(hooks) if isinstance(h, EvalHook))
            hooks[index] = EvalHook(self.cfg.TEST.EVAL_PERIOD, lambda: self.validate(self.cfg,
                                                                                     self.model))
        metric = self.cfg.TEST.SELECTION_METRIC
        if metric:
            check_selection_metric(self.cfg)
        if metric and comm.is_main_process():
            # After the EvalHook, whose results it reads from the event storage.
            hooks.append(ResumableBestCheckpointer(
                self.cfg.TEST.EVAL_PERIOD, self.checkpointer, metric, mode="max",
                output_dir=self.cfg.OUTPUT_DIR))
        return hooks

    def resume_or_load(self, resume=True):
        """Detectron2's resume, and the data streams restarted at the resumed iteration
        (``--resume`` then continues the same batches). A fresh run starts at the method's
        ``first_iteration`` (a step before training may use up the first iterations)."""
        super().resume_or_load(resume=resume)
        if self.start_iter == 0 and not self.cfg.MODEL.WEIGHTS:
            clip = self.cfg.MODEL.CLIP
            logger.info(f"Training starts from CLIP {clip.NAME} "
                        f"({clip.WEIGHTS or 'random initialisation'}); the layers CLIP does not "
                        f"provide start from their initialisation")
        if self.start_iter >= self.max_iter:
            self._finish_trained_run()
        if resume and self.start_iter > 0:
            for hook in self._hooks:
                if isinstance(hook, ResumableBestCheckpointer):
                    hook.restore()
        first = method_of(self.cfg).first_iteration(self.cfg) if self.start_iter == 0 else 0
        if first:
            self.start_iter = first
            set_schedule_position(self.scheduler, self.start_iter)
            logger.info(f"The training starts at iteration {first}: it trains iterations "
                        f"{first}..{self.max_iter - 1} of SOLVER.MAX_ITER")
        for sampler in self._samplers:
            sampler.start = self.start_iter * self.cfg.SOLVER.IMS_PER_BATCH

    def _finish_trained_run(self) -> None:
        """``--resume`` of a run with nothing left to train: past SOLVER.MAX_ITER is an error;
        at it, the final checkpoint is written if a kill interrupted its write."""
        last = self.checkpointer.get_checkpoint_file()
        if self.start_iter > self.max_iter:
            raise CheckpointError(
                f"--resume: the last checkpoint {last} holds {self.start_iter} trained "
                f"iterations, more than SOLVER.MAX_ITER={self.max_iter}: there is nothing to "
                f"train and its weights are not those of a {self.max_iter}-iteration run. Raise "
                f"SOLVER.MAX_ITER to train on, evaluate it with --eval-only MODEL.WEIGHTS {last}, "
                f"or set another OUTPUT_DIR to start over.")
        if not os.path.isfile(os.path.join(self.cfg.OUTPUT_DIR, "model_final.pth")):
            logger.info("The run was stopped while writing its final checkpoint: writing it now")
            self.checkpointer.save("model_final", iteration=self.iter)
        logger.info(f"--resume: training already finished ({self.max_iter} iterations, "
                    f"{last}): nothing to train")

    def run_step(self):
        """One step of the method's run step, seeded per step when ``SEED >= 0``; a NaN or
        infinite loss stops training with a TrainingDivergedError."""
        self._trainer.iter = self.iter
        if self.cfg.SEED >= 0:
            self._trainer._data_loader_iter  # created before seeding: creating one draws a seed
            seed_step(self.cfg.SEED, self.iter)
        try:
            self._trainer.run_step()
        except FloatingPointError as e:
            raise TrainingDivergedError(self._diverged_message(e)) from e

    def _diverged_message(self, error: FloatingPointError) -> str:
        if self.checkpointer.has_checkpoint():
            last = (f"The last good checkpoint is {self.checkpointer.get_checkpoint_file()}; "
                    f"after the fix, continue from it with --resume.")
        else:
            last = f"No checkpoint was written yet (SOLVER.CHECKPOINT_PERIOD " \
                   f"{self.cfg.SOLVER.CHECKPOINT_PERIOD}): the fixed run starts over."
        detail = str(error).split("\n", 1)[-1]
        return (f"Training diverged: the loss became NaN or infinite at iteration {self.iter} "
                f"({detail}). {last} Lower SOLVER.BASE_LR (now {self.cfg.SOLVER.BASE_LR:g}) or "
                f"lengthen SOLVER.WARMUP_ITERS, and check the training data (boxes, labels, "
                f"images) of {', '.join(self.cfg.DATASETS.TRAIN)}.")

    def train(self):
        """Train; with ``DATASETS.VAL``, then evaluate the test sets with the weights selected
        on validation (``model_best.pth`` when ``TEST.SELECTION_METRIC`` is set, else the last).
        Returns the last test results (None when nothing was tested)."""
        super().train()
        if not self.cfg.DATASETS.VAL:
            return getattr(self, "_last_eval_results", None)
        comm.synchronize()
        best = os.path.join(self.cfg.OUTPUT_DIR, "model_best.pth")
        if self.cfg.TEST.SELECTION_METRIC and os.path.isfile(best):
            logger.info(f"Testing the weights selected on validation: {best}")
            AtomicCheckpointer(self.model, self.cfg.OUTPUT_DIR, strict=True).load(
                best, checkpointables=[])
        self._last_eval_results = self.test(self.cfg, self.model)
        return self._last_eval_results

    @classmethod
    def validate(cls, cfg, model):
        """Model-selection metrics on ``DATASETS.VAL``. Classifiers: top-1 on all sets pooled,
        ``{"val": {"top1", "top1-<domain>"...}}`` (``val/top1`` in the event storage). Detectors:
        each set's AP, ``{<dataset>: {"bbox": {"AP50", ...}}}`` (``<dataset>/bbox/AP50``)."""
        if not is_classifier(cfg):
            return {name: inference_on_dataset(model, cls.build_test_loader(cfg, name),
                                               cls.build_evaluator(cfg, name))
                    for name in cfg.DATASETS.VAL}
        dataset = [d for name in cfg.DATASETS.VAL for d in DatasetCatalog.get(name)]
        loader = build_classification_test_loader(cfg, dataset)
        results = inference_on_dataset(model, loader, ClassificationEvaluator(cfg.DATASETS.VAL[0]))
        return {"val": results["accuracy"]} if results else {}

    @classmethod
    def build_optimizer(cls, cfg, model):
        """Detectron2's SGD, or Adam (``SOLVER.OPTIMIZER``) over the parameters that train."""
        if cfg.SOLVER.OPTIMIZER == "SGD":
            return super().build_optimizer(cfg, model)
        if cfg.SOLVER.OPTIMIZER != "Adam":
            raise ValueError(f"SOLVER.OPTIMIZER must be 'SGD' or 'Adam', got "
                             f"{cfg.SOLVER.OPTIMIZER!r}")
        params = get_default_optimizer_params(model, base_lr=cfg.SOLVER.BASE_LR,
                                              weight_decay=cfg.SOLVER.WEIGHT_DECAY)
        return maybe_add_gradient_clipping(cfg, torch.optim.Adam)(params, lr=cfg.SOLVER.BASE_LR)

    @classmethod
    def build_train_loader(cls, cfg, seed_offset: int = 0):
        """A loader over ``DATASETS.TRAIN`` whose resumable index stream is shuffled with
        ``SEED + seed_offset`` (random if SEED < 0): Detectron2's detection loader with the
        DetectionMapper, or a classification loader. The samplers are in ``resumable_samplers``."""
        loader = method_of(cfg).build_train_loader(cfg)
        if loader is not None:
            return loader
        seed = cfg.SEED + seed_offset if cfg.SEED >= 0 else None
        if not is_classifier(cfg):
            if cfg.DATALOADER.SAMPLER_TRAIN != "TrainingSampler":
                logger.warning(f"DATALOADER.SAMPLER_TRAIN={cfg.DATALOADER.SAMPLER_TRAIN}: "
                               f"--resume restarts its stream (not exact)")
                return build_detection_train_loader(cfg, mapper=DetectionMapper(cfg, True))
            dataset = detection_training_dicts(cfg)
            sampler = ResumableTrainingSampler(len(dataset), seed=seed)
            loader = build_detection_train_loader(
                cfg, mapper=DetectionMapper(cfg, True, num_images=len(dataset)), dataset=dataset,
                sampler=sampler)
            if isinstance(loader, AspectRatioGroupedDataset):
                loader = EagerGroupedLoader(loader)
        else:
            dataset = get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=False)
            sampler = ResumableTrainingSampler(len(dataset), seed=seed)
            loader = build_classification_train_loader(cfg, dataset, sampler)
        loader.resumable_samplers = [sampler]
        return loader

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        if not is_classifier(cfg):  # the training mapper in test mode: same reader and errors
            return build_detection_test_loader(
                dataset=detection_test_dicts(cfg, dataset_name), mapper=DetectionMapper(cfg, False),
                num_workers=cfg.DATALOADER.NUM_WORKERS)
        return build_classification_test_loader(cfg, DatasetCatalog.get(dataset_name))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if MetadataCatalog.get(dataset_name).get("evaluator_type", "") == "classification":
            return ClassificationEvaluator(dataset_name, output_dir=output_folder)
        return DomainAPEvaluator(dataset_name, output_dir=output_folder,
                                 box_convention=cfg.TEST.AP_BOX_CONVENTION)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """Evaluate on every ``DATASETS.TEST`` set; results keyed by dataset name."""
        results = super().test(cfg, model, evaluators)
        if len(cfg.DATASETS.TEST) == 1:
            results = {cfg.DATASETS.TEST[0]: results}
        if comm.is_main_process() and results:
            metric, task = ("top1", "accuracy") if is_classifier(cfg) else ("AP50", "bbox")
            table = write_domain_tables(results, cfg.OUTPUT_DIR, metric_key=metric, task=task)
            logger.info(f"Results per domain ({metric}):\n" + table)
        return results
