"""Whether two runs of the study computed the same numbers: their ``records.json`` compared
record by record (exact float equality), with the acceptance checks, the stand-ins' sha256 and
the generated data's sha256 of every stand-in seed both ran."""
import json
import os
from typing import Dict, List, Mapping, Tuple

from domaingen.utils.errors import InputError

__all__ = ["StudyFileError", "load_study", "compare_studies", "comparison_markdown",
           "identical"]

# What names a record; every other field is a number the run computed.
KEY_FIELDS = ("experiment", "method", "standin_seed", "seed", "domain", "strength", "rule")


class StudyFileError(InputError, ValueError):
    """A file that is not a study's ``records.json``."""


def load_study(path: str) -> dict:
    """A study's ``records.json`` (the file, or the output folder holding it)."""
    if os.path.isdir(path):
        path = os.path.join(path, "records.json")
    try:
        with open(path) as f:
            study = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise StudyFileError(f"{path}: not a readable evidence records.json ({e})") from None
    missing = {"records", "provenance", "acceptance"} - set(study)
    if missing:
        raise StudyFileError(f"{path}: no {sorted(missing)} in it; expected the records.json that "
                         f"tools/evidence.py writes")
    return study


def _key(record: Mapping) -> Tuple:
    return tuple((k, record[k]) for k in KEY_FIELDS if k in record)


def _values(record: Mapping) -> dict:
    return {k: v for k, v in record.items() if k not in KEY_FIELDS}


def _by_folder_tail(data: Mapping[str, str]) -> Dict[str, str]:
    """Data hashes keyed by the folder's path below the datasets root (clones differ above)."""
    return {os.path.join(*path.split(os.sep)[-2:]): sha for path, sha in data.items()}


def compare_studies(a: Mapping, b: Mapping) -> dict:
    """``{"records": {"identical", "different", "only_a", "only_b"}, "checks": [...]}``: the
    records matched by :data:`KEY_FIELDS` (``different`` lists ``(key, a values, b values)``),
    then one ``(what, equal)`` per stand-in seed both hold: its weights, its data, its
    acceptance checks."""
    ra = {_key(r): _values(r) for r in a["records"]}
    rb = {_key(r): _values(r) for r in b["records"]}
    both = sorted(set(ra) & set(rb), key=repr)
    records = {"identical": sum(ra[k] == rb[k] for k in both),
               "different": [(k, ra[k], rb[k]) for k in both if ra[k] != rb[k]],
               "only_a": sorted(set(ra) - set(rb), key=repr),
               "only_b": sorted(set(rb) - set(ra), key=repr)}
    checks: List[Tuple[str, bool]] = []
    for seed in sorted(set(a["provenance"]) & set(b["provenance"]), key=int):
        pa, pb = a["provenance"][seed], b["provenance"][seed]
        checks.append((f"stand-in seed {seed}: weights sha256", pa["standins"] == pb["standins"]))
        checks.append((f"stand-in seed {seed}: data sha256",
                       _by_folder_tail(pa["data"]) == _by_folder_tail(pb["data"])))
    for seed in sorted(set(a["acceptance"]) & set(b["acceptance"]), key=int):
        checks.append((f"stand-in seed {seed}: acceptance checks",
                       a["acceptance"][seed] == b["acceptance"][seed]))
    return {"records": records, "checks": checks}


def comparison_markdown(result: Mapping, shown: int = 20) -> str:
    r = result["records"]
    lines = [f"- records identical: {r['identical']}; different: {len(r['different'])}; "
             f"only in the first: {len(r['only_a'])}; only in the second: {len(r['only_b'])}"]
    lines += [f"- {what}: {'identical' if equal else '**different**'}"
              for what, equal in result["checks"]]
    for key, va, vb in r["different"][:shown]:
        lines.append(f"- differs: {dict(key)}: {va} vs {vb}")
    for name in ("only_a", "only_b"):
        lines += [f"- {name.replace('_', ' ')}: {dict(key)}" for key in r[name][:shown]]
    return "\n".join(lines) + "\n"


def identical(result: Mapping) -> bool:
    """Every record both hold equal, none held by one only, every stand-in check equal."""
    r = result["records"]
    return (not r["different"] and not r["only_a"] and not r["only_b"]
            and all(equal for _, equal in result["checks"]))
