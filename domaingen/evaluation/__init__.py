"""Cross-domain detection evaluation: VOC AP, a Detectron2 evaluator and summary tables."""

from .domain_ap import DomainAPEvaluator
from .tables import compare_runs, domain_results_table, read_results_csv, write_domain_tables
from .voc_ap import average_precision, voc_ap

__all__ = [
    "DomainAPEvaluator",
    "average_precision",
    "compare_runs",
    "domain_results_table",
    "read_results_csv",
    "voc_ap",
    "write_domain_tables",
]
