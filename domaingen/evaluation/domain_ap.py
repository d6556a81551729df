"""Pascal-VOC style per-class AP evaluator for detection datasets of one domain."""

import logging
import math
from collections import OrderedDict, defaultdict

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.structures import BoxMode
from tabulate import tabulate

from domaingen.utils.logs import FILE_ONLY

from .gather import gather_on_main
from .voc_ap import average_precision

__all__ = ["AP_BOX_CONVENTIONS", "DomainAPEvaluator"]

AP_BOX_CONVENTIONS = ("continuous", "detectron2_voc")

logger = logging.getLogger(__name__)


class DomainAPEvaluator(DatasetEvaluator):
    """VOC AP (default AP50) of a registered dataset, from its dataset dicts.

    Ground truth is read from ``DatasetCatalog.get(dataset_name)`` (``bbox`` in
    any absolute ``bbox_mode``, contiguous ``category_id``, optional
    ``difficult``). Metadata provides ``thing_classes``, ``use_07_metric``
    (default True) and ``domain`` (default: the dataset name, used in logs).

    ``evaluate()`` returns ``{"bbox": {"AP50": mean, "AP50-<class>": ...}}`` in
    percent; the mean is over classes that have non-difficult ground truth, the
    others are reported as ``nan``.

    ``box_convention``: "continuous" compares the boxes of the dataset dicts with the
    predictions in continuous coordinates. "detectron2_voc" repeats the arithmetic of
    Detectron2's PascalVOCDetectionEvaluator, which the CLIP-the-Gap authors report: predictions
    written 1-based (xmin, ymin + 1) with one decimal and scores with three, ground truth as
    the annotation files it reads hold it (the raw XML for Detectron2-convention datasets; for
    the authors' Diverse Weather and Comic/Watercolor loaders, the shifted integer boxes they
    write back into the XML), inclusive pixel areas, IoU strictly above the threshold.
    """

    def __init__(self, dataset_name, output_dir=None, distributed=True, iou_threshold=0.5,
                 box_convention="continuous"):
        """``output_dir`` is accepted for detectron2 evaluator API parity; nothing is written."""
        if box_convention not in AP_BOX_CONVENTIONS:
            raise ValueError(f"TEST.AP_BOX_CONVENTION must be one of {AP_BOX_CONVENTIONS}, "
                             f"got {box_convention!r}")
        self._box_convention = box_convention
        meta = MetadataCatalog.get(dataset_name)
        self._dataset_box_convention = meta.get("box_convention", None)
        self._dataset_name = dataset_name
        self._class_names = list(meta.thing_classes)
        self._use_07_metric = bool(meta.get("use_07_metric", True))
        self._domain = meta.get("domain", dataset_name)
        self._distributed = distributed
        self._iou_threshold = iou_threshold
        self._metric = "AP{:d}".format(int(round(iou_threshold * 100)))
        self._predictions = []

    def reset(self):
        """Called as an evaluation starts: says which set (the progress follows)."""
        self._predictions = []
        logger.info(f"Evaluating {self._dataset_name} (domain {self._domain})")

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            instances = out["instances"].to("cpu")
            boxes = instances.pred_boxes.tensor.numpy().astype(np.float64)
            scores = instances.scores.numpy().astype(np.float64)
            if self._box_convention == "detectron2_voc":
                boxes = np.round(boxes + np.array([1.0, 1.0, 0.0, 0.0]), 1)
                scores = np.round(scores, 3)
            self._predictions.append(
                {
                    "image_id": inp["image_id"],
                    "boxes": boxes,
                    "scores": scores,
                    "classes": instances.pred_classes.numpy().astype(np.int64),
                }
            )

    def evaluate(self):
        predictions = gather_on_main(self._predictions, self._distributed)
        if predictions is None:
            return {}
        if not predictions:
            logger.warning("DomainAPEvaluator on %s received no predictions.", self._dataset_name)

        ground_truth, npos = self._load_ground_truth()
        detections = self._detections_by_class(predictions)
        aps = [
            average_precision(
                detections[c], ground_truth[c], self._iou_threshold, self._use_07_metric,
                voc_devkit=self._box_convention == "detectron2_voc",
            )
            * 100.0
            for c in range(len(self._class_names))
        ]
        valid = [ap for ap in aps if not math.isnan(ap)]
        metrics = OrderedDict()
        metrics[self._metric] = float(np.mean(valid)) if valid else math.nan
        for name, ap in zip(self._class_names, aps):
            metrics["{}-{}".format(self._metric, name)] = ap
        self._log_table(aps, npos, metrics[self._metric])
        return OrderedDict([("bbox", metrics)])

    def _load_ground_truth(self):
        """Per class: ``image_id -> (boxes, difficult)``, plus non-difficult counts."""
        dicts = DatasetCatalog.get(self._dataset_name)
        if not dicts:
            logger.warning("Dataset %s is empty.", self._dataset_name)
        collected = defaultdict(lambda: defaultdict(lambda: ([], [])))
        for record in dicts:
            for ann in record.get("annotations", []):
                box = self._annotation_file_box(BoxMode.convert(
                    list(ann["bbox"]), ann.get("bbox_mode", BoxMode.XYXY_ABS), BoxMode.XYXY_ABS
                ))
                boxes, difficult = collected[ann["category_id"]][record["image_id"]]
                boxes.append(box)
                difficult.append(bool(ann.get("difficult", False)))
        ground_truth, npos = [], []
        for c in range(len(self._class_names)):
            per_image = {
                image_id: (np.array(boxes, dtype=np.float64), np.array(difficult, dtype=bool))
                for image_id, (boxes, difficult) in collected[c].items()
            }
            ground_truth.append(per_image)
            npos.append(sum(int((~d).sum()) for _, d in per_image.values()))
        return ground_truth, npos

    def _annotation_file_box(self, box):
        """A ground-truth box as Detectron2's VOC evaluator reads it from the annotation file
        (``detectron2_voc``), else unchanged."""
        if self._box_convention != "detectron2_voc":
            return box
        if self._dataset_box_convention == "detectron2":
            return [box[0] + 1, box[1] + 1, box[2], box[3]]
        if self._dataset_box_convention == "shift_all":
            return [float(int(v)) for v in box]
        return box

    def _detections_by_class(self, predictions):
        """Per class: list of ``(image_id, score, box)``."""
        detections = [[] for _ in self._class_names]
        for pred in predictions:
            for box, score, c in zip(pred["boxes"], pred["scores"], pred["classes"]):
                if 0 <= c < len(detections):
                    detections[c].append((pred["image_id"], float(score), box))
        return detections

    def _log_table(self, aps, npos, mean_ap):
        rows = [[name, n, ap] for name, n, ap in zip(self._class_names, npos, aps)]
        rows.append(["mean", sum(npos), mean_ap])
        table = tabulate(
            rows,
            headers=["category", "#instances", self._metric],
            tablefmt="pipe",
            floatfmt=".1f",
            numalign="right",
        )
        protocol = "VOC07 11-point" if self._use_07_metric else "area"
        logger.info(
            "Per-class %s on %s (domain %s, %s):\n%s",
            self._metric,
            self._dataset_name,
            self._domain,
            protocol,
            table,
            extra=FILE_ONLY,
        )
