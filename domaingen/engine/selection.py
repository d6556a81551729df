"""Model selection on a validation metric that survives ``--resume``."""
import json
import logging
import os
from typing import List

from detectron2.engine.hooks import BestCheckpointer

from domaingen.utils.files import atomic_write

from .registry import method_of
from .setup import ConfigError

logger = logging.getLogger(__name__)

STATE_FILE = "model_best.json"


def selection_metrics(cfg) -> List[str]:
    """The metrics the periodic evaluation computes, each optionally followed by ``-<domain>``
    or ``-<class>``: ``val/top1`` (classifiers with DATASETS.VAL), ``<test set>/accuracy/top1``
    (classifiers without), ``<set>/bbox/AP50`` (detectors, on DATASETS.VAL, else TEST)."""
    classifier = method_of(cfg).task == "classification"
    if classifier and cfg.DATASETS.VAL:
        return ["val/top1"]
    if classifier:
        return [f"{name}/accuracy/top1" for name in cfg.DATASETS.TEST]
    return [f"{name}/bbox/AP50" for name in (cfg.DATASETS.VAL or cfg.DATASETS.TEST)]


def check_selection_metric(cfg) -> None:
    """ConfigError at start-up for a ``TEST.SELECTION_METRIC`` the evaluation never computes."""
    metric = cfg.TEST.SELECTION_METRIC
    if cfg.TEST.EVAL_PERIOD <= 0:
        raise ConfigError(f"TEST.SELECTION_METRIC={metric!r} needs TEST.EVAL_PERIOD > 0")
    known = selection_metrics(cfg)
    if not any(metric == m or metric.startswith(m + "-") for m in known):
        raise ConfigError(
            f"TEST.SELECTION_METRIC={metric!r} is not computed by this run's evaluation: use "
            f"{' or '.join(known) or 'a metric of a DATASETS.TEST set'} (optionally followed by "
            f"-<domain> or -<class>)")


class ResumableBestCheckpointer(BestCheckpointer):
    """Detectron2's BestCheckpointer (``model_best.pth``) whose best score and iteration are
    also written to ``OUTPUT_DIR/model_best.json`` after each new best, so that ``--resume``
    compares later evaluations with the best one seen before the interruption
    (:meth:`restore`) and selects the model an uninterrupted run selects."""

    def __init__(self, *args, output_dir: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._state_path = os.path.join(output_dir, STATE_FILE)

    def restore(self) -> None:
        """Take up the best score of the interrupted run, if it recorded one."""
        if not os.path.isfile(self._state_path):
            return
        with open(self._state_path) as f:
            state = json.load(f)
        if state.get("metric") == self._val_metric:
            self.best_metric, self.best_iter = state["best"], state["iteration"]
            logger.info(f"Selection continues from the best {self._val_metric} "
                        f"{self.best_metric:.5f} @ iteration {self.best_iter}")

    def _best_checking(self):
        before = self.best_iter
        super()._best_checking()
        if self.best_iter != before:  # model_best.pth was written: record it
            state = {"metric": self._val_metric, "best": self.best_metric,
                     "iteration": self.best_iter}
            atomic_write(self._state_path, lambda f: f.write(json.dumps(state).encode()))
