"""Prompt learners shared by the CLIP classifiers."""
from .context import ContextPrompts

__all__ = ["ContextPrompts"]
