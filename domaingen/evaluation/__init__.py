"""Cross-domain evaluation: VOC AP and top-1 accuracy Detectron2 evaluators, summary tables."""

from .classification import ClassificationEvaluator
from .domain_ap import DomainAPEvaluator
from .tables import (
    compare_runs,
    comparison_markdown,
    domain_results_table,
    read_results_csv,
    write_domain_tables,
)
from .voc_ap import average_precision, voc_ap

__all__ = [
    "ClassificationEvaluator",
    "DomainAPEvaluator",
    "average_precision",
    "compare_runs",
    "comparison_markdown",
    "domain_results_table",
    "read_results_csv",
    "voc_ap",
    "write_domain_tables",
]
