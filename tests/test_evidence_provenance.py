"""Evidence results carry their provenance (code, stand-ins, data, environment) and a cached
result, or an interrupted run's checkpoints, is reused only when all of it matches."""
import json
import subprocess

import torch

from domaingen.miniature.evidence import protocol
from domaingen.miniature.evidence.provenance import provenance

REPO = __file__.rsplit("/tests/", 1)[0]


def test_a_result_is_reused_only_with_the_same_provenance(tmp_path):
    out, calls = tmp_path / "run", []

    def compute():
        calls.append(1)
        (out / "model_final.pth").write_bytes(b"weights")
        return {"photo": 50.0 + len(calls)}

    first = {"commit": "a" * 40, "dirty": False}
    assert protocol.cached(str(out), first, compute) == {"photo": 51.0}
    assert protocol.cached(str(out), first, compute) == {"photo": 51.0} and len(calls) == 1
    other = {**first, "commit": "b" * 40}
    (out / "left_over.txt").write_text("from the earlier code")
    assert protocol.cached(str(out), other, compute) == {"photo": 52.0}
    assert not (out / "left_over.txt").exists()  # the stale run is gone, not mixed in
    saved = json.loads((out / protocol.DONE).read_text())
    assert saved == {"provenance": other, "results": {"photo": 52.0}}


def test_an_interrupted_run_resumes_only_with_the_same_provenance(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    same = {"commit": "a" * 40, "dirty": False}
    (out / protocol.STARTED).write_text(json.dumps(same))
    (out / "model_0000009.pth").write_bytes(b"a checkpoint to resume from")
    seen = []
    protocol.cached(str(out), same, lambda: seen.append(sorted(p.name for p in out.iterdir())))
    assert "model_0000009.pth" in seen[0]
    (out / protocol.DONE).unlink()
    (out / protocol.STARTED).write_text(json.dumps(same))
    protocol.cached(str(out), {**same, "dirty": True},
                     lambda: seen.append(sorted(p.name for p in out.iterdir())))
    assert seen[1] == [protocol.STARTED]  # the other code's checkpoint is not resumed


def test_the_record_names_the_commit_the_data_the_standins_and_the_environment(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jpg").write_bytes(b"1")
    record = provenance({"domaingen-semantic-RN": {"sha256": "c" * 64}}, [str(data)])
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert record["commit"] == head and isinstance(record["dirty"], bool)
    assert record["standins"] == {"domaingen-semantic-RN": "c" * 64}
    assert record["environment"]["torch"] == torch.__version__
    assert record["environment"]["threads"] == torch.get_num_threads()
    (data / "a.jpg").write_bytes(b"2")
    changed = provenance({"domaingen-semantic-RN": {"sha256": "c" * 64}}, [str(data)])
    assert changed["data"] != record["data"] and list(changed["data"]) == [str(data)]


def test_the_evidence_run_passes_and_publishes_its_provenance(tmp_path, monkeypatch):
    from domaingen.miniature.evidence import run as evidence

    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setattr(evidence, "prepare_world", lambda root, seed: [str(folder)])
    monkeypatch.setattr(evidence, "default_root", lambda: str(tmp_path))
    monkeypatch.setattr(evidence, "_standins", lambda seed: {"x": {"sha256": str(seed)}})
    monkeypatch.setattr(evidence, "_acceptance", lambda seed, reports: {
        "classification": {"checks": []}, "detection": {"checks": []}})
    monkeypatch.setattr(evidence, "report", lambda records, *args: f"{len(records)} records")
    seen = []

    def experiment(standin_seed, seed, root, record, device):
        seen.append(record)
        return [{"experiment": "uda", "method": m, "standin_seed": standin_seed, "seed": seed,
                 "domain": d, "strength": None, "rule": "last", "value": 50.0}
                for m in protocol.UDA_METHODS for d in ("sketch", "cartoon")]

    monkeypatch.setattr(evidence, "_unit", lambda e, a, b, out, record, device, pilot: experiment(
        a, b, out, record, device))
    monkeypatch.setattr(evidence, "ProcessPoolExecutor", _InlinePool)
    text = evidence.run(0, [0, 1], [5], ["uda"], str(tmp_path / "out"), jobs=1)
    assert text == "8 records" and len(seen) == 2
    assert [r["standins"] for r in seen] == [{"x": "0"}, {"x": "1"}]
    assert all(r["environment"]["threads"] == 1 and r["world_seed"] == 0 for r in seen)
    saved = json.loads((tmp_path / "out" / "records.json").read_text())
    assert saved["provenance"]["0"] == seen[0] and len(saved["records"]) == 8


class _InlinePool:
    """ProcessPoolExecutor's interface, running each unit at submission (no processes)."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        from concurrent.futures import Future

        future = Future()
        future.set_result(fn(*args))
        return future


def _study_with_acceptance(tmp_path, monkeypatch, classification_passes):
    """The default study (no stand-in seeds given) over detection and uda with stubbed units
    and acceptance: detection checks pass on every seed, classification ones where
    ``classification_passes(seed)``; returns the report's arguments and the units run."""
    from domaingen.miniature.evidence import run as evidence

    monkeypatch.setattr(evidence, "prepare_world", lambda root, seed: [])
    monkeypatch.setattr(evidence, "default_root", lambda: str(tmp_path))
    monkeypatch.setattr(evidence, "_standins", lambda seed: {"x": {"sha256": str(seed)}})
    monkeypatch.setattr(evidence, "_acceptance", lambda seed, reports: {
        "classification": {"checks": [("probe", 1.0, ">= 0", classification_passes(seed))]},
        "detection": {"checks": [("alignment", 1.0, ">= 0", True)]}})
    reported, units = {}, []
    monkeypatch.setattr(evidence, "report", lambda records, acceptance, provenances, world,
                        seeds_of, not_accepted, *rest: reported.update(
                            checked=sorted(acceptance), seeds_of=seeds_of,
                            not_accepted=not_accepted) or "")
    monkeypatch.setattr(evidence, "_unit", lambda e, a, b, *rest: units.append((e, a, b)) or [])
    monkeypatch.setattr(evidence, "ProcessPoolExecutor", _InlinePool)
    evidence.run(0, None, [5], ["detection", "uda"], str(tmp_path / "out"), jobs=1)
    return reported, units


def test_the_study_takes_per_experiment_the_first_stand_ins_that_pass_its_checks(
        tmp_path, monkeypatch):
    reported, units = _study_with_acceptance(tmp_path, monkeypatch, lambda seed: seed in (2, 4))
    assert reported == {"checked": [0, 1, 2, 3, 4], "not_accepted": [],
                        "seeds_of": {"classification": [2, 4], "detection": [0, 1]}}
    assert sorted(units) == [("detection", 0, 5), ("detection", 1, 5), ("uda", 2, 5),
                             ("uda", 4, 5)]


def test_an_experiment_without_accepted_stand_ins_runs_on_the_first_ones_not_accepted(
        tmp_path, monkeypatch):
    from domaingen.miniature.evidence.run import MAX_STANDIN_SEED

    reported, units = _study_with_acceptance(tmp_path, monkeypatch, lambda seed: seed == 3)
    assert reported == {"checked": list(range(MAX_STANDIN_SEED + 1)),
                        "not_accepted": ["classification"],
                        "seeds_of": {"classification": [0, 1], "detection": [0, 1]}}
    assert sorted(units) == [("detection", 0, 5), ("detection", 1, 5), ("uda", 0, 5),
                             ("uda", 1, 5)]


def test_missing_stand_ins_are_built_side_by_side_and_cached_ones_are_not(tmp_path, monkeypatch):
    from domaingen.miniature.evidence import run as evidence

    monkeypatch.setattr(evidence, "cached_entry", lambda path: path.endswith("seed1.pt"))
    built = []
    monkeypatch.setattr(evidence, "ensure_standin",
                        lambda name, cache_dir, seed: built.append((name, seed)))
    monkeypatch.setattr(evidence, "ProcessPoolExecutor", _InlinePool)
    evidence.build_standins([0, 1, 2], jobs=2)
    assert built == [(evidence.STANDIN, 0), (evidence.STANDIN, 2)]
    built.clear()
    evidence.build_standins([1, 2], jobs=2)  # one missing: the acceptance check builds it
    evidence.build_standins([0, 2], jobs=1)
    assert built == []
