"""Evidence tables on stub results: mean ± std over seeds, per-seed averages, the written files."""
import csv

import pytest

from domaingen.miniature.evidence.tables import (
    evidence_rows,
    format_markdown,
    seed_statistics,
    write_evidence,
)

# Two methods, two seeds, a source and two targets; B lacks target t2 in seed 1.
RECORDS = [
    {"method": "A", "seed": 0, "domain": "src", "value": 50.0},
    {"method": "A", "seed": 0, "domain": "t1", "value": 10.0},
    {"method": "A", "seed": 0, "domain": "t2", "value": 20.0},
    {"method": "A", "seed": 1, "domain": "src", "value": 52.0},
    {"method": "A", "seed": 1, "domain": "t1", "value": 14.0},
    {"method": "A", "seed": 1, "domain": "t2", "value": 30.0},
    {"method": "B", "seed": 0, "domain": "t1", "value": 40.0},
    {"method": "B", "seed": 0, "domain": "t2", "value": 20.0},
    {"method": "B", "seed": 1, "domain": "t1", "value": 30.0},
]


def test_seed_statistics_use_the_sample_std():
    assert seed_statistics([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5), 2)
    assert seed_statistics([5.0]) == (5.0, 0.0, 1)
    assert seed_statistics([])[2] == 0


def test_rows_average_each_seed_over_the_targets_first():
    table = evidence_rows(RECORDS, ["A", "B"], ["src", "t1", "t2"], average_over=["t1", "t2"])
    assert table["A"]["t1"] == (12.0, pytest.approx(8 ** 0.5), 2)
    # A: seed means (10 + 20) / 2 = 15 and (14 + 30) / 2 = 22 -> 18.5 ± std(15, 22)
    assert table["A"]["average"] == (18.5, pytest.approx(((15 - 18.5) ** 2 * 2) ** 0.5), 2)
    # B's seed 1 lacks t2: only seed 0 counts for the average; no source value at all.
    assert table["B"]["average"] == (30.0, 0.0, 1)
    assert table["B"]["src"][2] == 0


def test_markdown_cells_and_seed_note():
    table = evidence_rows(RECORDS, ["A", "B"], ["src", "t1"], average_over=["t1"])
    text = format_markdown(table, "top-1 (%)")
    assert "| method | src | t1 | average |" in text
    assert "| A | 51.0 ± 1.4 | 12.0 ± 2.8 | 12.0 ± 2.8 |" in text
    assert "| B | - | 35.0 ± 7.1 | 35.0 ± 7.1 |" in text
    assert "top-1 (%), mean ± standard deviation over 2 seed(s)." in text


def test_written_files(tmp_path):
    table = evidence_rows(RECORDS, ["A", "B"], ["t1", "t2"], average_over=["t1", "t2"])
    md, csv_path, png = write_evidence(str(tmp_path), "dg", "Stub", "AP50", table)
    assert open(md).read().startswith("## Stub\n\n| method | t1 | t2 | average |")
    rows = list(csv.DictReader(open(csv_path)))
    assert {"method": "A", "column": "average", "mean": "18.5000", "std": "4.9497",
            "seeds": "2"} in rows
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
