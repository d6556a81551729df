"""The pre-registered analysis over evidence records: primary metrics per replicate, paired
claim differences, verdicts, and the world's detection splits."""
import json

import pytest

from domaingen.miniature.evidence import analysis
from domaingen.miniature.evidence.world import STRENGTHS, TARGETS, detection_test_sets


def _det(method, a, b, domain, strength, value):
    return {"experiment": "detection", "method": method, "standin_seed": a, "seed": b,
            "domain": domain, "strength": strength, "rule": "last", "value": value}


def test_primary_averages_target_cells_and_leaves_out_the_source_split():
    records = [_det("baseline", 0, 0, "daytime_clear", 0.0, 90.0),
               _det("baseline", 0, 0, "night_sunny", 0.25, 40.0),
               _det("baseline", 0, 0, "night_sunny", 1.0, 20.0),
               _det("baseline", 1, 0, "night_sunny", 0.25, 10.0)]
    assert analysis.primary(records, "detection", "baseline") == {(0, 0): 30.0, (1, 0): 10.0}
    assert analysis.primary(records, "detection", "baseline", strength=1.0) == {(0, 0): 20.0}


def test_claim_differences_pair_replicates_and_verdicts_follow_the_family():
    records = []
    for b, (base, gap) in enumerate([(30, 35), (32, 36.5), (28, 33), (31, 35.5)]):
        records += [_det("baseline", 0, b, "night_sunny", 0.5, base),
                    _det("CLIP the Gap", 0, b, "night_sunny", 0.5, gap),
                    _det("random-direction bank", 0, b, "night_sunny", 0.5, base + 0.1 * b)]
    records.append(_det("CLIP the Gap", 0, 9, "night_sunny", 0.5, 99.0))  # unpaired: left out
    assert analysis.claim_differences(records, "detection", "CLIP the Gap", "baseline") == \
        pytest.approx([5.0, 4.5, 5.0, 4.5])
    (gap, control) = analysis.verdicts(records)
    assert gap.claim == "CLIP the Gap > baseline" and gap.n == 4 and gap.verdict == "holds"
    assert gap.p_holm == pytest.approx(min(1.0, 2 * gap.p_superiority))  # Holm over 2 claims
    assert control.claim == "CLIP the Gap > random-direction bank" and control.verdict == "holds"
    table = analysis.verdict_table([gap])
    assert "| CLIP the Gap > baseline | 4 | 4.75 AP50 |" in table


def test_the_detectors_are_tested_on_the_source_and_every_target_at_every_strength():
    sets = detection_test_sets()
    assert len(sets) == 1 + len(TARGETS) * len(STRENGTHS)
    assert sets["ev_dw_s100_daytime_clear_test"] == ("daytime_clear", 0.0)
    assert sets["ev_dw_s025_night_rainy_train"] == ("night_rainy", 0.25)


def test_detection_acceptance_reads_the_standin_report_against_the_thresholds():
    from domaingen.miniature.evidence.acceptance import (
        acceptance_markdown,
        detection_checks,
        failed,
    )

    report = {"zero_shot_top1": {"daytime_clear": 95.0},
              "alignment": {"daytime_clear->night_sunny": 0.9, "daytime_clear->dusk_rainy": 0.4,
                            "daytime_clear->night_rainy": 0.8, "daytime_clear->daytime_foggy": 0.7}}
    checks = detection_checks(report)["checks"]
    assert [passed for *_, passed in checks] == [True, False]  # dusk-rainy 0.4 < 0.5
    results = {1: {"classification": {"checks": [], "styles": {}},
                   "detection": {"checks": checks}}}
    assert failed(results) == ["detection (stand-in seed 1): day -> target alignment, min over "
                               "targets"]
    assert "| 1 | day -> target alignment, min over targets | 0.400 | >= 0.5 | **no** |" in \
        acceptance_markdown(results)


def test_classification_acceptance_applies_each_threshold_to_the_per_style_top1s():
    from domaingen.miniature.evidence.acceptance import classification_verdicts

    def styles(**change):
        table = {"photo": [95.0, 95.0, 93.0, 97.0], "sketch": [70.0, 40.0, 36.0, 62.0],
                 "cartoon": [80.0, 60.0, 52.0, 75.0], "painting": [65.0, 50.0, 44.0, 60.0],
                 "neon": [75.0, 85.0, 79.0, 90.0]}
        table.update(change)
        return {s: dict(zip(("own_template", "photo_template", "late_template",
                             "linear_probe"), v)) for s, v in table.items()}

    def passed(checks):
        return [p for *_, p in checks]

    checks = classification_verdicts(styles(), 30.0)  # every value on or inside its threshold
    assert [v for _, v, _, _ in checks] == [65.0, (40.0, 85.0), 3, 30.0, pytest.approx(5.2)]
    assert passed(checks) == [True] * 5  # probe gains 22, 15, 10, 5; late drops 2, 4, 8, 6, 6
    assert passed(classification_verdicts(styles(painting=[59.9, 50, 44, 60]), 30.0))[0] is False
    assert passed(classification_verdicts(styles(neon=[75, 85.1, 79, 95.1]), 30.0))[1] is False
    assert passed(classification_verdicts(styles(sketch=[70, 29.9, 26, 62]), 30.0))[1] is False
    assert passed(classification_verdicts(styles(cartoon=[80, 60, 52, 69.9]), 30.0)) == \
        [True, True, False, True, True]  # gains >= 10 on 2 of 4 styles
    assert passed(classification_verdicts(styles(), 30.1))[3] is False
    assert passed(classification_verdicts(styles(photo=[95, 95, 69, 97]), 30.0))[4] is True  # 10.0
    assert passed(classification_verdicts(styles(photo=[95, 95, 68, 97]), 30.0))[4] is False


def test_the_augmentation_log_averages_clip_gaps_scalars_from_metrics_json(tmp_path):
    from domaingen.miniature.evidence.protocol import augmentation_log

    lines = [{"iteration": 19, "total_loss": 1.0, "clip_gap/augmented": 1.0,
              "clip_gap/bank_index": 3.0, "clip_gap/offset_ratio": 0.2},
             {"iteration": 39, "total_loss": 0.9, "clip_gap/augmented": 0.0},
             {"iteration": 59, "clip_gap/augmented": 1.0, "clip_gap/offset_ratio": 0.4}]
    (tmp_path / "metrics.json").write_text("\n".join(map(json.dumps, lines)) + "\n")
    log = augmentation_log(str(tmp_path))
    assert log == {"augmented": pytest.approx(2 / 3), "bank_index": 3.0,
                   "offset_ratio": pytest.approx(0.3), "logged_iterations": 3}


def test_the_report_reads_no_claim_on_stand_ins_its_checks_rejected():
    from domaingen.data.datasets.classification import SYNTHETIC_DOMAINS
    from domaingen.miniature.evidence.run import report

    records = []
    for b, (base, gap) in enumerate([(30, 35), (32, 36.5), (28, 33), (31, 35.5)]):
        records += [_det("baseline", 0, b, "night_sunny", 0.5, base),
                    _det("CLIP the Gap", 0, b, "night_sunny", 0.5, gap)]
        records += [{"experiment": "uda", "method": m, "standin_seed": 0, "seed": b,
                     "domain": "sketch", "strength": None, "rule": "last", "value": v}
                    for m, v in (("source only", 50.0), ("AD-CLIP", 60.0 + b))]
    styles = {s: dict(own_template=90.0, photo_template=50.0, late_template=50.0,
                      linear_probe=70.0) for s in SYNTHETIC_DOMAINS}
    acceptance = {0: {"classification": {"styles": styles,
                                         "checks": [("probe", 1.0, ">= 0", False)]},
                      "detection": {"checks": [("alignment", 1.0, ">= 0", True)]}}}
    provenances = {0: {"commit": "abc", "dirty": False, "environment": {"threads": 1}}}
    text = report(records, acceptance, provenances, 0, {"classification": [0], "detection": [0]},
                  ["classification"], [0, 1, 2, 3], 1.0)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()
            if line.startswith("| CLIP the Gap > baseline") or line.startswith("| AD-CLIP >")}
    assert rows["CLIP the Gap > baseline"].endswith("| holds |")
    assert rows["AD-CLIP > source only"].endswith("| world not accepted (holds) |")
    assert "classification [0] (**not accepted**)" in text and "Commit abc;" in text
