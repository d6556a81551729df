"""The pre-registered analysis of the evidence records: per replicate the primary metric of each
method, the family of claims with their paired differences, verdicts, and the descriptive
tables (per method, the strength sweep, the controls, the augmentation logs)."""
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from .statistics import PairedResult, analyse, markdown_table, t_quantile

__all__ = ["CLAIMS", "experiment_of", "primary", "claim_differences", "verdicts", "method_table",
           "sweep_table", "augmentation_table", "verdict_table"]

# (claim, experiment, method, compared with, smallest effect of interest δ), fixed in advance.
CLAIMS = (
    ("CLIP the Gap > baseline", "detection", "CLIP the Gap", "baseline", 1.5),
    ("CLIP the Gap > random-direction bank", "detection", "CLIP the Gap",
     "random-direction bank", 1.5),
    ("SPG > CoOp", "dg", "SPG", "CoOp", 1.0),
    ("SPG > CoCoOp", "dg", "SPG", "CoCoOp", 1.0),
    ("CoOp > ZS-CLIP", "dg", "CoOp", "ZS-CLIP", 1.0),
    ("CoCoOp > ZS-CLIP", "dg", "CoCoOp", "ZS-CLIP", 1.0),
    ("AD-CLIP > source only", "uda", "AD-CLIP", "source only", 1.0),
)
UNITS = {"detection": "AP50", "dg": "top-1", "uda": "top-1"}


def experiment_of(claim: str) -> str:
    """The experiment a claim of :data:`CLAIMS` is about."""
    return next(c[1] for c in CLAIMS if c[0] == claim)


def _replicate(r: Mapping) -> Tuple[int, int]:
    return int(r["standin_seed"]), int(r["seed"])


def primary(records: Sequence[Mapping], experiment: str, method: str, rule: str = "last",
            strength: float = None) -> Dict[Tuple[int, int], float]:
    """``{(standin_seed, seed): value}``: the mean over the experiment's target cells (detection:
    every target domain at every strength, or at ``strength``; classification: every held-out
    or target domain) of one method's records under a selection rule."""
    cells: Dict[Tuple[int, int], List[float]] = {}
    for r in records:
        if r["experiment"] != experiment or r["method"] != method or r["rule"] != rule:
            continue
        if experiment == "detection" and (not r["strength"] or
                                          (strength is not None and r["strength"] != strength)):
            continue  # the day-clear test split (strength 0) is not a target
        cells.setdefault(_replicate(r), []).append(float(r["value"]))
    return {k: float(np.mean(v)) for k, v in sorted(cells.items())}


def claim_differences(records: Sequence[Mapping], experiment: str, method: str, other: str,
                      rule: str = "last", strength: float = None) -> List[float]:
    """Paired differences method - other over the replicates both have."""
    a = primary(records, experiment, method, rule, strength)
    b = primary(records, experiment, other, rule, strength)
    return [a[k] - b[k] for k in sorted(set(a) & set(b))]


def verdicts(records: Sequence[Mapping], alpha: float = 0.05) -> List[PairedResult]:
    """The family of :data:`CLAIMS`, Holm-adjusted, with verdicts (claims with fewer than two
    replicates are left out)."""
    family = {}
    for claim, experiment, method, other, delta in CLAIMS:
        differences = claim_differences(records, experiment, method, other)
        if len(differences) >= 2:
            family[claim] = (differences, delta)
    return analyse(family, alpha)


def _mean_ci(values: Sequence[float]) -> str:
    values = np.asarray(values, float)
    if len(values) < 2:
        return f"{values.mean():.1f}" if len(values) else "-"
    half = t_quantile(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"{values.mean():.1f} [{values.mean() - half:.1f}, {values.mean() + half:.1f}]"


def method_table(records: Sequence[Mapping], experiment: str, methods: Sequence[str],
                 domains: Sequence[str], rules: Sequence[str] = ("last",)) -> str:
    """Per method (and rule): each domain's mean over replicates and the primary metric's mean
    with its 95 % t interval over replicates."""
    lines = ["| method | rule | " + " | ".join(domains) + " | mean [95 % CI] |",
             "|---|---|" + "---:|" * (len(domains) + 1)]
    for method in methods:
        for rule in rules:
            mine = [r for r in records if r["experiment"] == experiment
                    and r["method"] == method and r["rule"] == rule]
            if not mine:
                continue
            cells = [np.mean([r["value"] for r in mine if r["domain"] == d
                              and (experiment != "detection" or r["strength"])] or [np.nan])
                     for d in domains]
            means = list(primary(records, experiment, method, rule).values())
            lines.append(f"| {method} | {rule} | " + " | ".join(f"{c:.1f}" for c in cells)
                         + f" | {_mean_ci(means)} |")
    return "\n".join(lines) + "\n"


def sweep_table(records: Sequence[Mapping], strengths: Sequence[float],
                methods: Sequence[str]) -> str:
    """Detection: each method's target AP50 at each strength (mean [95 % CI] over replicates),
    and CLIP the Gap - baseline per strength."""
    lines = ["| strength | " + " | ".join(methods) + " | Gap - baseline |",
             "|---:|" + "---:|" * (len(methods) + 1)]
    for s in strengths:
        cells = [_mean_ci(list(primary(records, "detection", m, strength=s).values()))
                 for m in methods]
        diff = claim_differences(records, "detection", "CLIP the Gap", "baseline", strength=s)
        lines.append(f"| {s:g} | " + " | ".join(cells) + f" | {_mean_ci(diff)} |")
    day = [_mean_ci([r["value"] for r in records if r["experiment"] == "detection"
                     and r["method"] == m and not r["strength"]]) for m in methods]
    lines.append("| day-clear test | " + " | ".join(day) + " | |")
    return "\n".join(lines) + "\n"


def augmentation_table(records: Sequence[Mapping]) -> str:
    """CLIP the Gap's logged augmentation: share of augmented batches and the offset norm over
    the res4 channel-mean norm (means over logged iterations, then over replicates)."""
    lines = ["| run | replicates | augmented batches | ‖offset‖ / ‖res4 channel mean‖ |",
             "|---|---:|---:|---:|"]
    for method in sorted({r["method"] for r in records if r["experiment"] == "augmentation"}):
        mine = [r for r in records if r["experiment"] == "augmentation" and r["method"] == method]
        ratio = [r["offset_ratio"] for r in mine if "offset_ratio" in r]
        lines.append(f"| {method} | {len(mine)} | {np.mean([r['augmented'] for r in mine]):.2f} | "
                     f"{np.mean(ratio) if ratio else float('nan'):.3f} |")
    return "\n".join(lines) + "\n"


def verdict_table(results: Sequence[PairedResult]) -> str:
    return markdown_table(results, {c[0]: UNITS[c[1]] for c in CLAIMS})
