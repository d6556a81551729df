"""Tests for domaingen.evaluation: VOC AP math, DomainAPEvaluator, summary tables."""

import csv
import math
import os
import pickle
import uuid

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, BoxMode, Instances
from detectron2.utils import comm

from domaingen.evaluation import (
    DomainAPEvaluator,
    average_precision,
    domain_results_table,
    voc_ap,
    write_domain_tables,
)
from domaingen.utils.plots import bar_chart

CLASSES = ["car", "person", "bike"]


# --------------------------------------------------------------------------- voc_ap


def test_voc_ap_11_point_and_area():
    recall = [0.25, 0.5, 0.5, 0.75]
    precision = [1.0, 1.0, 2 / 3, 0.75]
    # 11-point: t in {0,...,0.5} -> best precision 1 (6 points); t in {0.6, 0.7} -> 0.75;
    # t >= 0.8 unreachable -> 0. (6 + 2 * 0.75) / 11.
    assert voc_ap(recall, precision, use_07_metric=True) == pytest.approx(7.5 / 11)
    # Envelope: 1 up to recall 0.5, 0.75 up to 0.75, then 0.
    # Area: 0.5 * 1 + 0.25 * 0.75 = 0.6875.
    assert voc_ap(recall, precision, use_07_metric=False) == pytest.approx(0.6875)


def test_voc_ap_perfect_and_empty_curve():
    assert voc_ap([0.5, 1.0], [1.0, 1.0], True) == pytest.approx(1.0)
    assert voc_ap([0.5, 1.0], [1.0, 1.0], False) == pytest.approx(1.0)
    assert voc_ap([], [], True) == 0.0
    assert voc_ap([], [], False) == 0.0


# ----------------------------------------------------------------- average_precision


def _gt(boxes, difficult):
    return np.array(boxes, dtype=float), np.array(difficult, dtype=bool)


def test_average_precision_voc_protocol():
    ground_truth = {
        "A": _gt([[0, 0, 10, 10], [20, 20, 30, 30]], [False, True]),
        "B": _gt([[0, 0, 10, 10]], [False]),
    }
    detections = [
        ("B", 0.5, [1, 0, 11, 10]),  # IoU 90/110 with B's box -> TP
        ("A", 0.9, [0, 0, 10, 10]),  # IoU 1 -> TP
        ("A", 0.7, [20, 20, 30, 30]),  # matches the difficult box -> ignored
        ("B", 0.6, [5, 0, 15, 10]),  # IoU 50/150 = 1/3 < 0.5 -> FP
        ("A", 0.8, [0, 0, 10, 10]),  # duplicate of an already matched box -> FP
    ]
    # npos = 2. By score: TP(.9), FP(.8), [ignored .7], FP(.6), TP(.5).
    # recall    = 1/2, 1/2, 1/2, 1
    # precision = 1,   1/2, 1/3, 1/2
    # 11-point: t <= 0.5 -> 1 (6 points); t >= 0.6 -> 1/2 (5 points): 8.5 / 11.
    # Area: 0.5 * 1 + 0.5 * 0.5 = 0.75.
    assert average_precision(detections, ground_truth) == pytest.approx(8.5 / 11)
    assert average_precision(detections, ground_truth, use_07_metric=False) == pytest.approx(0.75)
    # A stricter threshold turns the 0.818-IoU detection into a FP too: TP, FP, FP, FP.
    # 11-point: recall 1/2 with precision 1 -> 6 / 11.
    assert average_precision(detections, ground_truth, iou_threshold=0.85) == pytest.approx(6 / 11)


def test_average_precision_continuous_iou():
    # Continuous IoU: 2 / (4 + 4 - 2) = 1/3 -> FP. The "+1 pixel" convention would
    # give 6 / (9 + 9 - 6) = 0.5 and count it as a TP.
    ground_truth = {0: _gt([[0, 0, 2, 2]], [False])}
    assert average_precision([(0, 1.0, [1, 0, 3, 2])], ground_truth) == 0.0
    # IoU exactly at the threshold matches: 50 / 100.
    ground_truth = {0: _gt([[0, 0, 10, 10]], [False])}
    assert average_precision([(0, 1.0, [0, 0, 10, 5])], ground_truth) == pytest.approx(1.0)


def test_average_precision_edge_cases():
    only_difficult = {0: _gt([[0, 0, 10, 10]], [True])}
    assert math.isnan(average_precision([(0, 0.9, [0, 0, 10, 10])], only_difficult))
    assert math.isnan(average_precision([], {}))
    ground_truth = {0: _gt([[0, 0, 10, 10]], [False]), 1: _gt(np.zeros((0, 4)), [])}
    assert average_precision([], ground_truth) == 0.0
    # Detections on images without ground truth (listed empty or absent) are FPs.
    detections = [(1, 0.9, [0, 0, 10, 10]), (2, 0.8, [0, 0, 10, 10]), (0, 0.7, [0, 0, 10, 10])]
    # recall 0, 0, 1; precision 0, 0, 1/3 -> every 11-point threshold gives 1/3.
    assert average_precision(detections, ground_truth) == pytest.approx(1 / 3)


# ------------------------------------------------------------------------- evaluator


def _dataset_dicts():
    return [
        {
            "file_name": "1.jpg",
            "image_id": 1,
            "height": 100,
            "width": 100,
            "annotations": [
                {"bbox": [0, 0, 10, 10], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0},
                {"bbox": [20, 20, 30, 30], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 1},
            ],
        },
        {
            "file_name": "2.jpg",
            "image_id": 2,
            "height": 100,
            "width": 100,
            "annotations": [
                {"bbox": [50, 50, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0},
                {
                    "bbox": [0, 0, 5, 5],
                    "bbox_mode": BoxMode.XYXY_ABS,
                    "category_id": 1,
                    "difficult": True,
                },
            ],
        },
        {"file_name": "3.jpg", "image_id": 3, "height": 100, "width": 100, "annotations": []},
    ]


def _register(name, use_07_metric, dicts=_dataset_dicts):
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, dicts)
        MetadataCatalog.get(name).set(
            thing_classes=CLASSES, use_07_metric=use_07_metric, domain="foggy"
        )


def _instances(boxes, scores, classes):
    inst = Instances((100, 100))
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.scores = torch.tensor(scores, dtype=torch.float32)
    inst.pred_classes = torch.tensor(classes, dtype=torch.int64)
    return inst


def _model_outputs():
    """(input, output) per image, in dataset order."""
    return [
        (
            {"image_id": 1},
            {
                "instances": _instances(
                    [[0, 0, 10, 10], [20, 20, 30, 30], [20, 20, 30, 30]], [0.9, 0.8, 0.7], [0, 1, 0]
                )
            },
        ),
        (
            {"image_id": 2},
            {"instances": _instances([[50, 50, 60, 60], [0, 0, 5, 5]], [0.5, 0.95], [0, 1])},
        ),
        ({"image_id": 3}, {"instances": _instances([], [], [])}),
    ]


# car: by score TP(.9, img 1), FP(.7, img 1 on the person), TP(.5, img 2; GT given as XYWH).
#   recall 1/2, 1/2, 1; precision 1, 1/2, 2/3.
#   11-point: 6 * 1 + 5 * 2/3 = 28/3 -> 28/33; area: 0.5 * 1 + 0.5 * 2/3 = 5/6.
# person: TP(.8); the .95 detection hits the difficult box -> ignored. AP = 1.
# bike: no ground truth -> nan, excluded from the mean.
EXPECTED = {
    True: {"AP50-car": 2800 / 33, "AP50-person": 100.0},
    False: {"AP50-car": 500 / 6, "AP50-person": 100.0},
}


def _run_evaluator(name, distributed, outputs):
    evaluator = DomainAPEvaluator(name, distributed=distributed)
    evaluator.reset()
    for inp, out in outputs:
        evaluator.process([inp], [out])
    return evaluator.evaluate()


@pytest.mark.parametrize("use_07_metric", [True, False])
def test_evaluator_end_to_end(use_07_metric):
    name = f"domaingen_test_eval_{uuid.uuid4().hex}"
    _register(name, use_07_metric)
    results = _run_evaluator(name, distributed=False, outputs=_model_outputs())
    assert list(results) == ["bbox"]
    bbox = results["bbox"]
    assert list(bbox) == ["AP50", "AP50-car", "AP50-person", "AP50-bike"]
    expected = EXPECTED[use_07_metric]
    assert bbox["AP50-car"] == pytest.approx(expected["AP50-car"])
    assert bbox["AP50-person"] == pytest.approx(expected["AP50-person"])
    assert math.isnan(bbox["AP50-bike"])
    assert bbox["AP50"] == pytest.approx((expected["AP50-car"] + 100.0) / 2)


def test_evaluator_no_predictions_and_empty_dataset():
    name = f"domaingen_test_eval_{uuid.uuid4().hex}"
    _register(name, True)
    bbox = _run_evaluator(name, distributed=True, outputs=[])["bbox"]
    assert bbox["AP50"] == 0.0 and bbox["AP50-car"] == 0.0 and bbox["AP50-person"] == 0.0
    assert math.isnan(bbox["AP50-bike"])

    empty = f"domaingen_test_empty_{uuid.uuid4().hex}"
    _register(empty, True, dicts=list)
    bbox = _run_evaluator(empty, distributed=False, outputs=_model_outputs())["bbox"]
    assert all(math.isnan(v) for v in bbox.values())


def _distributed_worker(name, out_path):
    """Runs in each of the 2 spawned ranks; each rank sees half of the images."""
    _register(name, True)
    rank = comm.get_rank()
    results = _run_evaluator(name, distributed=True, outputs=_model_outputs()[rank::2])
    if comm.is_main_process():
        with open(out_path, "wb") as f:
            pickle.dump(results, f)
    else:
        assert results == {}


@pytest.mark.distributed
def test_evaluator_distributed_gather(tmp_path, monkeypatch, launch_on_cpu):
    name = f"domaingen_test_dist_{uuid.uuid4().hex}"
    out_path = str(tmp_path / "rank0.pkl")
    launch_on_cpu(_distributed_worker, (name, out_path))
    with open(out_path, "rb") as f:
        distributed = pickle.load(f)

    _register(name, True)
    single = _run_evaluator(name, distributed=False, outputs=_model_outputs())
    assert list(distributed) == ["bbox"]
    assert list(distributed["bbox"]) == list(single["bbox"])
    assert distributed["bbox"] == pytest.approx(single["bbox"], nan_ok=True)


# ---------------------------------------------------------------------------- tables


def test_write_domain_tables(tmp_path):
    clear = f"domaingen_test_clear_{uuid.uuid4().hex}"
    night = f"domaingen_test_night_{uuid.uuid4().hex}"  # no metadata: labelled by name
    MetadataCatalog.get(clear).set(thing_classes=["car", "person"], domain="clear")
    results = {
        clear: {"bbox": {"AP50": 50.0, "AP50-car": 40.04, "AP50-person": 59.96}},
        night: {"bbox": {"AP50": 70.26, "AP50-car": 70.26, "AP50-person": math.nan}},
        "no_evaluator": {},
    }

    rows, columns = domain_results_table(results)
    assert columns == ["domain", "car", "person", "mAP"]
    assert rows[0] == ["clear", 40.04, 59.96, 50.0]
    assert rows[1][0] == night and rows[1][1] == 70.26 and math.isnan(rows[1][2])
    assert len(rows) == 2

    out = tmp_path / "summary"
    markdown = write_domain_tables(results, str(out))
    assert (out / "results.md").read_text() == markdown
    lines = markdown.strip().splitlines()
    assert lines[0] == "### AP50 per domain"
    table = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert table[0] == columns
    assert table[2] == ["clear", "40.0", "60.0", "50.0"]
    assert table[3] == [night, "70.3", "-", "70.3"]

    with open(out / "results.csv", newline="") as f:
        assert list(csv.reader(f)) == [
            columns,
            ["clear", "40.0", "60.0", "50.0"],
            [night, "70.3", "", "70.3"],
        ]
    png = (out / "ap50_per_domain.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(os.listdir(out)) == ["ap50_per_domain.png", "results.csv", "results.md"]


def test_write_domain_tables_other_task(tmp_path):
    name = f"domaingen_test_cls_{uuid.uuid4().hex}"
    MetadataCatalog.get(name).set(thing_classes=["a", "b"], domain="sketch")
    results = {name: {"cls": {"acc": 81.25, "acc-a": 80.0, "acc-b": 82.5}}}
    markdown = write_domain_tables(results, str(tmp_path), metric_key="acc", task="cls")
    assert markdown.startswith("### acc per domain")
    assert "| sketch" in markdown
    assert (tmp_path / "acc_per_domain.png").exists()
    with pytest.raises(ValueError):
        domain_results_table(results)  # no "bbox" task anywhere


def test_bar_chart_annotated_with_missing_value(tmp_path):
    path = tmp_path / "acc.png"
    fig = bar_chart(str(path), ["photo", "sketch"], {"acc": [91.5, math.nan]}, "accuracy (%)",
                    "acc")
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["91.5", ""]  # no bar, no number for nan
    assert [b.get_height() for b in ax.patches][0] == 91.5
    assert (ax.get_title(), ax.get_ylabel()) == ("acc", "accuracy (%)")
    plain = bar_chart(str(path), ["photo"], {"acc": [91.5]}, "accuracy (%)", "acc",
                      annotate=False)
    assert not plain.axes[0].texts
    with pytest.raises(ValueError):
        bar_chart(str(path), ["photo", "sketch"], {"acc": [91.5]}, "accuracy (%)", "acc")
