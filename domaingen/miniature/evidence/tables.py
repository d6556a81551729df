"""Evidence tables: a metric per method and domain as mean ± std over seeds (markdown, CSV, PNG)."""
import csv
import io
import math
import os
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from domaingen.utils.files import atomic_write
from domaingen.utils.plots import bar_chart

__all__ = ["seed_statistics", "evidence_rows", "format_markdown", "write_evidence"]


def seed_statistics(values: Sequence[float]) -> Tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one seed) and count of ``values``."""
    values = [float(v) for v in values]
    if not values:
        return math.nan, math.nan, 0
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), std, len(values)


def evidence_rows(records: Sequence[Mapping], methods: Sequence[str], domains: Sequence[str],
                  average_over: Sequence[str] = ()
                  ) -> Dict[str, Dict[str, Tuple[float, float, int]]]:
    """``{method: {domain: (mean, std, seeds)}}`` from records ``{method, seed, domain, value}``.

    With ``average_over``, each seed's mean over those domains is one more column, "average":
    its mean and standard deviation are taken over seeds (a seed lacking one of the domains
    does not count).
    """
    table = {}
    for method in methods:
        mine = [r for r in records if r["method"] == method]
        row = {d: seed_statistics([r["value"] for r in mine if r["domain"] == d]) for d in domains}
        if average_over:
            per_seed = {}
            for r in mine:
                if r["domain"] in average_over:
                    per_seed.setdefault(r["seed"], {})[r["domain"]] = float(r["value"])
            row["average"] = seed_statistics([float(np.mean(list(v.values())))
                                              for v in per_seed.values()
                                              if len(v) == len(average_over)])
        table[method] = row
    return table


def _cell(stat: Tuple[float, float, int]) -> str:
    mean, std, n = stat
    if n == 0:
        return "-"
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def format_markdown(table: Mapping[str, Mapping[str, tuple]], metric: str) -> str:
    """A pipe table: one row per method, one column per domain (+ average)."""
    columns = list(next(iter(table.values())))
    lines = ["| method | " + " | ".join(columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for method, row in table.items():
        lines.append(f"| {method} | " + " | ".join(_cell(row[c]) for c in columns) + " |")
    seeds = sorted({stat[2] for row in table.values() for stat in row.values() if stat[2]})
    lines.append("")
    lines.append(f"{metric}, mean ± standard deviation over {', '.join(map(str, seeds))} seed(s).")
    return "\n".join(lines) + "\n"


def write_evidence(out_dir: str, name: str, title: str, metric: str,
                   table: Mapping[str, Mapping[str, tuple]]) -> List[str]:
    """Write ``<name>.md`` (title + table), ``<name>.csv`` (method, column, mean, std, seeds)
    and ``<name>.png`` (bars with the standard deviation); returns the three paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, f"{name}.{ext}") for ext in ("md", "csv", "png")]
    markdown = f"## {title}\n\n" + format_markdown(table, metric)
    atomic_write(paths[0], lambda f: f.write(markdown.encode()))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", "column", "mean", "std", "seeds"])
    for method, row in table.items():
        for column, (mean, std, n) in row.items():
            writer.writerow([method, column, f"{mean:.4f}", f"{std:.4f}", n])
    atomic_write(paths[1], lambda f: f.write(buffer.getvalue().encode()))
    columns = list(next(iter(table.values())))
    bar_chart(paths[2], columns, {m: [row[c][0] for c in columns] for m, row in table.items()},
              ylabel=metric, title=title,
              errors={m: [row[c][1] for c in columns] for m, row in table.items()})
    return paths
