"""Cross-domain summary of per-dataset evaluation results (markdown, CSV, bar chart)."""

import csv
import io
import math
import os
from typing import List, Mapping, Optional, Sequence, Tuple

from detectron2.data import MetadataCatalog
from tabulate import tabulate

from ..utils.files import atomic_write
from ..utils.plots import bar_chart

__all__ = ["compare_runs", "comparison_markdown", "domain_results_table", "read_results_csv",
           "write_domain_tables"]


def domain_results_table(
    results: Mapping[str, Mapping], metric_key: str = "AP50", task: str = "bbox"
) -> Tuple[List[list], List[str]]:
    """One row per dataset: ``[domain, <metric per class>..., <mean metric>]``.

    Args:
        results: ``{dataset_name: {task: {metric_key: mean, "<metric_key>-<class>": ...}}}``
            as returned by ``DefaultTrainer.test`` for several test sets. Datasets
            without ``task`` (e.g. no evaluator) are skipped.
        metric_key: mean metric name; per-class entries are ``f"{metric_key}-{class}"``.
        task: task key inside each dataset's results.

    Returns:
        ``(rows, columns)`` with ``columns = ["domain", *classes, mean]``, ``mean``
        being ``"mAP"`` for AP metrics and ``"mean"`` otherwise. Domains are the
        datasets' metadata ``domain`` (default: dataset name); classes follow
        ``thing_classes`` (or result order when metadata lacks them).
        Missing values are ``nan``.
    """
    prefix = metric_key + "-"
    datasets = [(name, res[task]) for name, res in results.items() if task in res]
    if not datasets:
        raise ValueError(
            f"no dataset results contain task {task!r}; expected "
            "{dataset_name: {task: metrics}} (DefaultTrainer.test unwraps a single dataset)"
        )
    classes: List[str] = []
    for name, metrics in datasets:
        # Metadata classes win: other "<metric_key>-*" keys (e.g. per-domain accuracy) are no class.
        found = list(MetadataCatalog.get(name).get("thing_classes", []))
        found = found or [k[len(prefix):] for k in metrics if k.startswith(prefix)]
        for c in found:
            if c not in classes:
                classes.append(c)
    rows = []
    for name, metrics in datasets:
        domain = MetadataCatalog.get(name).get("domain", name)
        values = [metrics.get(prefix + c, math.nan) for c in classes]
        values.append(metrics.get(metric_key, math.nan))
        rows.append([domain] + [float(v) for v in values])
    return rows, ["domain"] + classes + [_mean_column(metric_key)]


def _mean_column(metric_key: str) -> str:
    """Label of the mean column: ``"mAP"`` for AP metrics (``AP``, ``AP50``...), else ``"mean"``."""
    return "mAP" if metric_key.startswith("AP") else "mean"


def write_domain_tables(
    results: Mapping[str, Mapping],
    output_dir: str,
    metric_key: str = "AP50",
    task: str = "bbox",
    title: Optional[str] = None,
) -> str:
    """Write ``results.md``, ``results.csv`` and ``<metric>_per_domain.png`` to ``output_dir``.

    See :func:`domain_results_table` for the table layout. Values use one
    decimal; missing values are ``-`` (markdown) or empty (CSV). ``title``
    defaults to ``"<metric_key> per domain"``. Returns the markdown text.
    """
    title = title or f"{metric_key} per domain"
    rows, columns = domain_results_table(results, metric_key=metric_key, task=task)

    def fmt(v):
        return "" if math.isnan(v) else f"{v:.1f}"

    table = tabulate(
        [[row[0]] + [fmt(v) or "-" for v in row[1:]] for row in rows],
        headers=columns,
        tablefmt="pipe",
        colalign=["left"] + ["right"] * (len(columns) - 1),
        disable_numparse=True,
    )
    markdown = f"### {title}\n\n{table}\n"
    atomic_write(os.path.join(output_dir, "results.md"), lambda f: f.write(markdown.encode()))

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[row[0]] + [fmt(v) for v in row[1:]] for row in rows])
    csv_text = buf.getvalue()
    atomic_write(os.path.join(output_dir, "results.csv"), lambda f: f.write(csv_text.encode()))

    run = os.path.basename(os.path.normpath(output_dir))
    bar_chart(
        os.path.join(output_dir, f"{metric_key.lower()}_per_domain.png"),
        groups=[str(row[0]) for row in rows],
        series={col: [row[i] for row in rows] for i, col in enumerate(columns) if i > 0},
        ylabel=f"{metric_key} (%)",
        title=f"{run}: {title} (%), per class and mean",
        annotate=False,
        ylim=(0, 100),
    )
    return markdown


def read_results_csv(path: str) -> Tuple[List[str], dict]:
    """Read a ``results.csv`` back: ``(columns, {domain: {column: value or nan}})``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"results table {path} does not exist "
                                "(has the run been evaluated?)")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    columns = rows[0][1:]
    return columns, {r[0]: {c: float(v) if v else math.nan for c, v in zip(columns, r[1:])}
                     for r in rows[1:]}


def compare_runs(runs: Mapping[str, str], metric: str = "mAP") -> Tuple[List[str], dict]:
    """``metric`` per domain of several runs (``runs``: label -> results.csv path): the domains
    of the first run, then "target mean" (every domain but the first, the source), as
    ``(rows, {label: [value per row]})``."""
    tables = {label: read_results_csv(path)[1] for label, path in runs.items()}
    domains = list(next(iter(tables.values())))
    values = {label: [table.get(d, {}).get(metric, math.nan) for d in domains]
              for label, table in tables.items()}
    for label, column in values.items():
        targets = [v for v in column[1:] if not math.isnan(v)]
        column.append(sum(targets) / len(targets) if targets else math.nan)
    return [*domains, "target mean"], values


def comparison_markdown(rows: Sequence[str], values: Mapping[str, Sequence[float]]) -> str:
    """Markdown table of :func:`compare_runs`: the runs side by side, then each run's difference
    to the first."""
    labels = list(values)
    headers = ["domain", *labels, *[f"{label} - {labels[0]}" for label in labels[1:]]]
    table = []
    for i, row in enumerate(rows):
        first = values[labels[0]][i]
        table.append([f"**{row}**" if row == "target mean" else row,
                      *[f"{values[label][i]:.1f}" for label in labels],
                      *[f"{values[label][i] - first:+.1f}" for label in labels[1:]]])
    return tabulate(table, headers=headers, tablefmt="pipe", disable_numparse=True,
                    colalign=["left"] + ["right"] * (len(headers) - 1))
