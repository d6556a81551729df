"""Comparing two runs of the evidence study: records matched by what names them and compared
exactly, the stand-ins' weights, data and acceptance checks per stand-in seed, and the tool's
exit status and one-line error."""
import copy
import json
import os
import subprocess
import sys

import pytest

from domaingen.miniature.evidence.reproduction import (
    StudyFileError,
    compare_studies,
    comparison_markdown,
    identical,
    load_study,
)

TOOL = os.path.join(os.path.dirname(__file__), "..", "tools", "compare_evidence.py")


def _study(root="/work/a"):
    return {
        "records": [
            {"experiment": "detection", "method": "baseline", "standin_seed": 0, "seed": 0,
             "domain": "night_sunny", "strength": 0.5, "rule": "last", "value": 31.25},
            {"experiment": "augmentation", "method": "CLIP the Gap", "standin_seed": 0,
             "seed": 0, "augmented": 0.4, "bank_index": 7.5, "offset_ratio": 0.04,
             "logged_iterations": 30}],
        "provenance": {"0": {"standins": {"RN": "abc"},
                             "data": {f"{root}/datasets/miniature_world_v2/world0/s050": "d1",
                                      f"{root}/datasets/synthetic_domains": "d2"}}},
        "acceptance": {"0": {"detection": {"checks": [["alignment", 0.8, ">= 0.5", True]]}}},
    }


def test_two_runs_in_different_folders_with_the_same_numbers_are_identical():
    result = compare_studies(_study("/work/a"), _study("/tmp/clone"))
    assert result["records"]["identical"] == 2 and identical(result)
    assert result["checks"] == [("stand-in seed 0: weights sha256", True),
                                ("stand-in seed 0: data sha256", True),
                                ("stand-in seed 0: acceptance checks", True)]


def test_a_changed_number_a_missing_record_and_other_weights_are_reported():
    b = _study()
    b["records"][0]["value"] = 31.250001
    b["records"].pop(1)
    b["provenance"]["0"]["standins"]["RN"] = "abd"
    result = compare_studies(_study(), b)
    assert not identical(result)
    (key, va, vb), = result["records"]["different"]
    assert dict(key)["domain"] == "night_sunny" and (va, vb) == ({"value": 31.25},
                                                                  {"value": 31.250001})
    assert [dict(k)["experiment"] for k in result["records"]["only_a"]] == ["augmentation"]
    text = comparison_markdown(result)
    assert "- records identical: 0; different: 1; only in the first: 1; only in the second: 0" \
        in text and "- stand-in seed 0: weights sha256: **different**" in text


def test_the_tool_exits_1_on_a_difference_and_names_a_file_that_is_not_a_study(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "records.json").write_text(json.dumps(_study()))
    changed = copy.deepcopy(_study())
    changed["acceptance"]["0"]["detection"]["checks"][0][1] = 0.7
    (tmp_path / "b.json").write_text(json.dumps(changed))
    (tmp_path / "bad.json").write_text('{"records": []}')
    with pytest.raises(StudyFileError, match=r"bad.json: no \['acceptance', 'provenance'\]"):
        load_study(str(tmp_path / "bad.json"))

    def tool(*paths):
        return subprocess.run([sys.executable, TOOL, *map(str, paths)],
                              capture_output=True, text=True)

    other = tool(tmp_path / "a", tmp_path / "b.json")
    assert other.returncode == 1 and "acceptance checks: **different**" in other.stdout
    bad = tool(tmp_path / "a", tmp_path / "bad.json")
    assert bad.returncode == 1 and bad.stderr.strip().startswith("StudyFileError: ") \
        and "Traceback" not in bad.stderr
