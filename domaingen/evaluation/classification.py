"""Top-1 accuracy evaluator for image classification datasets, overall, per domain and per class."""

import logging
import math
from collections import OrderedDict

import torch
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from tabulate import tabulate

from domaingen.utils.logs import FILE_ONLY

from .gather import gather_on_main

__all__ = ["ClassificationEvaluator"]

logger = logging.getLogger(__name__)


def _percent(correct: int, total: int) -> float:
    return 100.0 * correct / total if total else math.nan


class ClassificationEvaluator(DatasetEvaluator):
    """Top-1 accuracy (percent) of a registered classification dataset.

    Each input carries ``label`` (contiguous class index) and ``domain`` (default:
    the dataset metadata ``domain``, itself defaulting to the dataset name); each
    output carries ``logits`` or ``probs``, a 1-D tensor over ``thing_classes``;
    the prediction is its argmax. A test set may mix domains (e.g. the union of
    the target domains in single-source DG).

    ``evaluate()`` returns ``{"accuracy": {"top1": overall, "top1-<domain>": ...,
    "top1-<class>": ...}}``: domains sorted by name, classes in ``thing_classes``
    order, ``nan`` where there is no sample. A domain named like a class is keyed
    ``top1-domain-<domain>`` instead.
    """

    def __init__(self, dataset_name, output_dir=None, distributed=True):
        """``output_dir`` is accepted for detectron2 evaluator API parity; nothing is written."""
        meta = MetadataCatalog.get(dataset_name)
        self._dataset_name = dataset_name
        self._class_names = list(meta.thing_classes)
        self._domain = meta.get("domain", dataset_name)
        self._distributed = distributed
        self._predictions = []

    def reset(self):
        """Called as an evaluation starts: says which set (the progress follows)."""
        self._predictions = []  # (label, prediction, domain)
        logger.info(f"Evaluating {self._dataset_name}")

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            scores = out["logits"] if "logits" in out else out["probs"]
            if scores.dim() != 1:
                raise ValueError(
                    f"expected a 1-D score tensor over classes, got shape {tuple(scores.shape)}"
                )
            pred = int(torch.argmax(scores).item())
            domain = inp.get("domain", self._domain)
            self._predictions.append((int(inp["label"]), pred, str(domain)))

    def evaluate(self):
        predictions = gather_on_main(self._predictions, self._distributed)
        if predictions is None:
            return {}
        if not predictions:
            logger.warning("ClassificationEvaluator on %s received no predictions.",
                           self._dataset_name)

        num_classes = len(self._class_names)
        class_total, class_correct = [0] * num_classes, [0] * num_classes
        domain_total, domain_correct = {}, {}
        for label, pred, domain in predictions:
            hit = int(label == pred)
            if 0 <= label < num_classes:
                class_total[label] += 1
                class_correct[label] += hit
            else:
                logger.warning("Label %d outside [0, %d) in %s.", label, num_classes,
                               self._dataset_name)
            domain_total[domain] = domain_total.get(domain, 0) + 1
            domain_correct[domain] = domain_correct.get(domain, 0) + hit

        metrics = OrderedDict()
        metrics["top1"] = _percent(sum(domain_correct.values()), len(predictions))
        domains = sorted(domain_total)
        for domain in domains:
            key = domain
            if domain in self._class_names:
                logger.warning("Domain %r is also a class name: keyed top1-domain-%s.",
                               domain, domain)
                key = f"domain-{domain}"
            metrics[f"top1-{key}"] = _percent(domain_correct[domain], domain_total[domain])
        for c, name in enumerate(self._class_names):
            metrics[f"top1-{name}"] = _percent(class_correct[c], class_total[c])

        self._log_tables(metrics, class_total, class_correct, domains, domain_total,
                         domain_correct, len(predictions))
        return OrderedDict([("accuracy", metrics)])

    def _log_tables(self, metrics, class_total, class_correct, domains, domain_total,
                    domain_correct, total):
        def table(rows, first):
            return tabulate(rows, headers=[first, "#images", "#correct", "top1"],
                            tablefmt="pipe", floatfmt=".1f", numalign="right")

        rows = [[name, n, k, _percent(k, n)]
                for name, n, k in zip(self._class_names, class_total, class_correct)]
        rows.append(["all", total, sum(domain_correct.values()), metrics["top1"]])
        logger.info("Per-class top-1 accuracy on %s (domain %s):\n%s",
                    self._dataset_name, self._domain, table(rows, "category"), extra=FILE_ONLY)
        if len(domains) > 1:
            rows = [[d, domain_total[d], domain_correct[d],
                     _percent(domain_correct[d], domain_total[d])] for d in domains]
            logger.info("Per-domain top-1 accuracy on %s:\n%s",
                        self._dataset_name, table(rows, "domain"), extra=FILE_ONLY)
