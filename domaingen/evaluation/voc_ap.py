"""Pascal VOC average precision for a single class (pure numpy)."""

import math
from typing import Hashable, Mapping, Sequence, Tuple

import numpy as np

__all__ = ["voc_ap", "average_precision"]

Detection = Tuple[Hashable, float, Sequence[float]]
GroundTruth = Mapping[Hashable, Tuple[np.ndarray, np.ndarray]]


def voc_ap(recall, precision, use_07_metric: bool) -> float:
    """AP from a recall/precision curve ordered by decreasing score.

    ``use_07_metric=True`` gives the VOC2007 11-point interpolated AP (mean over
    recall thresholds 0, 0.1, ..., 1 of the best precision at recall >= t);
    otherwise the exact area under the monotone precision envelope (VOC2010+).
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if use_07_metric:
        ap = 0.0
        for t in np.arange(11) / 10.0:
            reached = precision[recall >= t]
            ap += reached.max() if reached.size else 0.0
        return float(ap / 11.0)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def _iou(box: np.ndarray, boxes: np.ndarray, pixel: float = 0.0) -> np.ndarray:
    """IoU of one XYXY box against ``boxes`` (Nx4): continuous coordinates (``pixel`` 0), or
    inclusive pixel indices as the VOC devkit (``pixel`` 1: a box spans x2 - x1 + 1 pixels)."""
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]) + pixel, 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]) + pixel, 0, None)
    inter = iw * ih
    area = (box[2] - box[0] + pixel) * (box[3] - box[1] + pixel)
    areas = (boxes[:, 2] - boxes[:, 0] + pixel) * (boxes[:, 3] - boxes[:, 1] + pixel)
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def average_precision(
    detections: Sequence[Detection],
    ground_truth: GroundTruth,
    iou_threshold: float = 0.5,
    use_07_metric: bool = True,
    voc_devkit: bool = False,
) -> float:
    """VOC-protocol AP of one class.

    Args:
        detections: ``(image_id, score, box_xyxy)`` triples.
        ground_truth: ``image_id -> (boxes Nx4 XYXY, difficult bool N)``; images
            without ground truth of this class may be absent.
        iou_threshold: minimum IoU for a match.
        use_07_metric: 11-point (VOC2007) instead of area AP.
        voc_devkit: the VOC devkit's arithmetic (Detectron2's ``voc_eval``): inclusive pixel
            areas and a match only when the IoU is strictly above the threshold.

    Detections are visited by decreasing score (stable) and matched to the
    highest-IoU ground truth of their image. A match to a difficult box is
    ignored; a match to an already matched box or an IoU below threshold is a
    false positive. Returns ``nan`` when the class has no non-difficult box.
    """
    gt = {}
    npos = 0
    for image_id, (boxes, difficult) in ground_truth.items():
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        difficult = np.asarray(difficult, dtype=bool).reshape(-1)
        npos += int((~difficult).sum())
        gt[image_id] = (boxes, difficult, np.zeros(len(boxes), dtype=bool))
    if npos == 0:
        return math.nan

    scores = np.array([d[1] for d in detections], dtype=np.float64)
    is_tp = []
    for i in np.argsort(-scores, kind="stable"):
        image_id, _, box = detections[i]
        if image_id not in gt or len(gt[image_id][0]) == 0:
            is_tp.append(False)
            continue
        boxes, difficult, matched = gt[image_id]
        ious = _iou(np.asarray(box, dtype=np.float64), boxes, pixel=1.0 if voc_devkit else 0.0)
        j = int(np.argmax(ious))
        if ious[j] < iou_threshold or (voc_devkit and ious[j] == iou_threshold):
            is_tp.append(False)
        elif difficult[j]:
            continue
        elif matched[j]:
            is_tp.append(False)
        else:
            matched[j] = True
            is_tp.append(True)
    if not is_tp:
        return 0.0
    is_tp = np.array(is_tp)
    tp = np.cumsum(is_tp)
    fp = np.cumsum(~is_tp)
    return voc_ap(tp / npos, tp / (tp + fp), use_07_metric)
