"""Tests for ClassificationEvaluator and the cross-domain accuracy summary table."""

import csv
import logging
import math
import pickle
import uuid

import pytest
import torch
from detectron2.data import MetadataCatalog
from detectron2.utils import comm

from domaingen.evaluation import ClassificationEvaluator, domain_results_table, write_domain_tables

CLASSES = ["dog", "cat", "horse"]

# (label, prediction, domain): a test set spanning two domains.
SAMPLES = [
    (0, 0, "photo"),  # hit
    (0, 1, "photo"),
    (1, 1, "photo"),  # hit
    (1, 1, "sketch"),  # hit
    (0, 0, "sketch"),  # hit
    (1, 0, "sketch"),
    (0, 2, "sketch"),
    (1, 1, "sketch"),  # hit
]
# overall 5/8; photo 2/3, sketch 3/5; dog 2/4, cat 3/4, horse has no sample -> nan.
EXPECTED = {
    "top1": 62.5,
    "top1-photo": 200 / 3,
    "top1-sketch": 60.0,
    "top1-dog": 50.0,
    "top1-cat": 75.0,
    "top1-horse": math.nan,
}


def _register(domain="photo+sketch", classes=CLASSES):
    name = f"domaingen_test_cls_{uuid.uuid4().hex}"
    MetadataCatalog.get(name).set(thing_classes=list(classes), domain=domain)
    return name


def _logits(pred, i):
    """Distinct per-sample logits (some negative) whose argmax is ``pred``."""
    scores = torch.linspace(-2.0, 1.0, len(CLASSES)) * (1 + i % 3)
    scores[pred] = 5.0 + i
    return scores


def _pairs(samples, kind="mixed"):
    """(input, output) per sample; ``kind``: "logits", "probs" or "mixed" (alternating)."""
    pairs = []
    for i, (label, pred, domain) in enumerate(samples):
        logits = _logits(pred, i)
        use_probs = kind == "probs" or (kind == "mixed" and i % 2)
        out = {"probs": torch.softmax(logits, 0)} if use_probs else {"logits": logits}
        pairs.append(({"file_name": f"{i}.jpg", "image_id": i, "label": label, "domain": domain},
                      out))
    return pairs


def _evaluate(name, pairs, distributed=False, batch_size=3):
    evaluator = ClassificationEvaluator(name, distributed=distributed)
    evaluator.reset()
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start:start + batch_size]
        evaluator.process([p[0] for p in batch], [p[1] for p in batch])
    return evaluator.evaluate()


def test_accuracy_overall_per_domain_per_class():
    results = _evaluate(_register(), _pairs(SAMPLES))
    assert list(results) == ["accuracy"]
    acc = results["accuracy"]
    assert list(acc) == list(EXPECTED)
    assert acc == pytest.approx(EXPECTED, nan_ok=True)
    assert all(isinstance(v, float) for v in acc.values())


def test_logits_and_probs_agree():
    name = _register()
    by_logits = _evaluate(name, _pairs(SAMPLES, "logits"))
    by_probs = _evaluate(name, _pairs(SAMPLES, "probs"))
    assert by_logits["accuracy"] == pytest.approx(by_probs["accuracy"], nan_ok=True)
    assert by_logits["accuracy"] == pytest.approx(EXPECTED, nan_ok=True)


def test_reset_and_domain_fallback():
    name = _register(domain="clipart")
    evaluator = ClassificationEvaluator(name, distributed=False)
    evaluator.process([{"label": 0}], [{"logits": torch.tensor([0.0, 1.0, 0.0])}])
    evaluator.reset()
    evaluator.process([{"label": 2}, {"label": 1}],
                      [{"logits": torch.tensor([0.0, 1.0, 3.0])},
                       {"probs": torch.tensor([0.7, 0.2, 0.1])}])
    acc = evaluator.evaluate()["accuracy"]
    assert list(acc) == ["top1", "top1-clipart", "top1-dog", "top1-cat", "top1-horse"]
    assert acc["top1"] == 50.0 and acc["top1-clipart"] == 50.0
    assert math.isnan(acc["top1-dog"]) and acc["top1-cat"] == 0.0 and acc["top1-horse"] == 100.0


def test_domain_named_like_class_does_not_clobber():
    name = _register(classes=["photo", "sketch"])
    pairs = [({"label": 0, "domain": "photo"}, {"logits": torch.tensor([1.0, 0.0])}),
             ({"label": 1, "domain": "photo"}, {"logits": torch.tensor([1.0, 0.0])})]
    acc = _evaluate(name, pairs)["accuracy"]
    assert acc["top1-domain-photo"] == 50.0
    assert acc["top1-photo"] == 100.0 and acc["top1-sketch"] == 0.0


def test_empty_gives_nan_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="domaingen.evaluation.classification"):
        acc = _evaluate(_register(), [], distributed=True)["accuracy"]  # not launched: 1 rank
    assert list(acc) == ["top1", "top1-dog", "top1-cat", "top1-horse"]
    assert all(math.isnan(v) for v in acc.values())
    assert "no predictions" in caplog.text


def test_rejects_batched_scores():
    evaluator = ClassificationEvaluator(_register(), distributed=False)
    with pytest.raises(ValueError):
        evaluator.process([{"label": 0}], [{"logits": torch.zeros(2, 3)}])


# ----------------------------------------------------------------------- distributed


def _distributed_worker(name, out_path):
    """Runs in each of the 2 spawned ranks; each rank sees every other sample."""
    MetadataCatalog.get(name).set(thing_classes=CLASSES, domain="photo+sketch")
    rank = comm.get_rank()
    results = _evaluate(name, _pairs(SAMPLES)[rank::2], distributed=True)
    if comm.is_main_process():
        with open(out_path, "wb") as f:
            pickle.dump(results, f)
    else:
        assert results == {}


@pytest.mark.distributed
def test_distributed_gather_matches_single_process(tmp_path, monkeypatch, launch_on_cpu):
    name = f"domaingen_test_cls_dist_{uuid.uuid4().hex}"
    out_path = str(tmp_path / "rank0.pkl")
    launch_on_cpu(_distributed_worker, (name, out_path))
    with open(out_path, "rb") as f:
        distributed = pickle.load(f)

    MetadataCatalog.get(name).set(thing_classes=CLASSES, domain="photo+sketch")
    single = _evaluate(name, _pairs(SAMPLES))
    assert list(distributed["accuracy"]) == list(single["accuracy"])
    assert distributed["accuracy"] == pytest.approx(single["accuracy"], nan_ok=True)
    assert distributed["accuracy"] == pytest.approx(EXPECTED, nan_ok=True)


# --------------------------------------------------------------------------- summary


def test_accuracy_summary_table(tmp_path):
    photo, union = _register(domain="photo"), _register(domain="photo+sketch")
    results = {
        photo: _evaluate(photo, _pairs([s for s in SAMPLES if s[2] == "photo"])),
        union: _evaluate(union, _pairs(SAMPLES)),
    }
    rows, columns = domain_results_table(results, metric_key="top1", task="accuracy")
    # Per-domain "top1-<domain>" entries are no class columns; the mean is overall top-1.
    assert columns == ["domain", "dog", "cat", "horse", "mean"]
    assert rows[0][0] == "photo" and rows[0][1:3] == pytest.approx([50.0, 100.0])
    assert math.isnan(rows[0][3]) and rows[0][4] == pytest.approx(200 / 3)
    assert rows[1] == pytest.approx(["photo+sketch", 50.0, 75.0, math.nan, 62.5], nan_ok=True)

    markdown = write_domain_tables(results, str(tmp_path), metric_key="top1", task="accuracy")
    assert markdown.startswith("### top1 per domain")
    assert (tmp_path / "results.md").read_text() == markdown
    with open(tmp_path / "results.csv", newline="") as f:
        assert list(csv.reader(f)) == [
            columns,
            ["photo", "50.0", "100.0", "", "66.7"],
            ["photo+sketch", "50.0", "75.0", "", "62.5"],
        ]
    assert (tmp_path / "top1_per_domain.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
