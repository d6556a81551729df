"""Datasets and data generation for domain-generalized detection."""
from . import datasets  # noqa: F401  (registers built-in datasets)
