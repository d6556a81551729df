"""The one Trainer every domaingen method runs on."""
import logging
import weakref

import torch

from detectron2.data import (
    DatasetCatalog,
    MetadataCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, TrainerBase
from detectron2.engine.hooks import BestCheckpointer
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.solver import get_default_optimizer_params
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from domaingen.data.mappers import ClassificationMapper
from domaingen.data.paired import build_paired_train_loader
from domaingen.evaluation import ClassificationEvaluator, DomainAPEvaluator, write_domain_tables
from domaingen.modeling.meta_arch import ClipImageClassifier

from .augmentation import SemanticAugmentationHook
from .checkpoint import AtomicCheckpointer
from .launch import create_ddp_model

logger = logging.getLogger(__name__)


def is_classifier(cfg) -> bool:
    """Whether ``MODEL.META_ARCHITECTURE`` is one of the CLIP image classifiers."""
    return issubclass(META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE), ClipImageClassifier)


class Trainer(DefaultTrainer):
    """Detectron2's DefaultTrainer with CPU-capable DDP, atomic checkpoints, per-domain
    evaluators and a cross-domain summary table (``results.md``/``.csv`` + chart) after tests."""

    def __init__(self, cfg):
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = create_ddp_model(model, broadcast_buffers=False)
        self._trainer = (AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer)(
            model, data_loader, optimizer)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = AtomicCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    def build_hooks(self):
        hooks = super().build_hooks()
        if self.cfg.MODEL.META_ARCHITECTURE == "ClipGapRCNN":
            # Before the LR scheduler and checkpointer hooks see the first iteration.
            hooks.insert(0, SemanticAugmentationHook())
        metric = self.cfg.TEST.SELECTION_METRIC
        if metric and comm.is_main_process():
            if self.cfg.TEST.EVAL_PERIOD <= 0:
                raise ValueError(f"TEST.SELECTION_METRIC={metric!r} needs TEST.EVAL_PERIOD > 0")
            # After the EvalHook, whose results it reads from the event storage.
            hooks.append(BestCheckpointer(self.cfg.TEST.EVAL_PERIOD, self.checkpointer, metric,
                                          mode="max"))
        return hooks

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
    def build_train_loader(cls, cfg):
        if cfg.DATASETS.TRAIN_UNLABELED:  # unsupervised domain adaptation (AD-CLIP)
            return build_paired_train_loader(cfg)
        if not is_classifier(cfg):
            return super().build_train_loader(cfg)
        dataset = get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=False)
        return build_detection_train_loader(
            dataset=dataset, mapper=ClassificationMapper.from_cfg(cfg, is_train=True),
            total_batch_size=cfg.SOLVER.IMS_PER_BATCH, aspect_ratio_grouping=False,
            num_workers=cfg.DATALOADER.NUM_WORKERS)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        if not is_classifier(cfg):
            return super().build_test_loader(cfg, dataset_name)
        return build_detection_test_loader(
            dataset=DatasetCatalog.get(dataset_name),
            mapper=ClassificationMapper.from_cfg(cfg, is_train=False),
            batch_size=cfg.TEST.IMS_PER_BATCH, num_workers=cfg.DATALOADER.NUM_WORKERS)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if MetadataCatalog.get(dataset_name).get("evaluator_type", "") == "classification":
            return ClassificationEvaluator(dataset_name, output_dir=output_folder)
        return DomainAPEvaluator(dataset_name, output_dir=output_folder)

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
