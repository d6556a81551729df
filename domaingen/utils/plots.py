"""Matplotlib charts rendered off-screen (Agg canvas, no global backend change)."""

import math
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .files import atomic_write

__all__ = ["bar_chart", "line_chart"]


def bar_chart(
    path: str,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    ylabel: str,
    title: str,
    annotate: bool = True,
    errors: Mapping[str, Sequence[float]] = None,
    ylim: Optional[Tuple[float, float]] = None,
) -> Figure:
    """Save a grouped bar chart as PNG; returns the figure.

    Args:
        path: output file, written atomically.
        groups: x-axis groups (e.g. domains).
        series: legend label -> one value per group; ``nan`` draws no bar.
        ylabel, title: axis label and figure title.
        annotate: print each value (1 decimal) above its bar.
        errors: optional legend label -> one error-bar half-length per group.
        ylim: the y-axis range (default: from 0 to the largest bar), e.g. (0, 100) for percents,
            so that charts of several runs share one scale.
    """
    n_groups, n_series = len(groups), len(series)
    fig = Figure(figsize=(max(6.0, 2.0 + 0.3 * n_groups * max(n_series, 1)), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(n_groups)
    width = 0.8 / max(n_series, 1)
    for i, (label, values) in enumerate(series.items()):
        values = [float(v) for v in values]
        if len(values) != n_groups:
            raise ValueError(f"series {label!r} has {len(values)} values for {n_groups} groups")
        yerr = [float(e) for e in errors[label]] if errors else None
        bars = ax.bar(x + (i - (n_series - 1) / 2) * width, values, width, label=label,
                      yerr=yerr, capsize=2 if yerr else 0)
        if annotate:
            texts = ["" if math.isnan(v) else f"{v:.1f}" for v in values]
            ax.bar_label(bars, labels=texts, fontsize=7, padding=1)
    ax.set_xticks(x)
    rotate = n_groups > 4
    ax.set_xticklabels(groups, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(*(ylim or (0, None)))
    ax.grid(axis="y", alpha=0.3)
    if n_series > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120, bbox_inches="tight"))
    return fig


def line_chart(path: str, values: Sequence[float], xlabel: str, ylabel: str, title: str) -> None:
    """Save one curve (e.g. a loss per iteration) as PNG, written atomically."""
    fig = Figure(figsize=(6.0, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(np.arange(1, len(values) + 1), [float(v) for v in values], linewidth=1.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120, bbox_inches="tight"))
