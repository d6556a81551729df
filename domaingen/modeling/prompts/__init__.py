"""Prompt learners shared by the CLIP classifiers."""
from .context import ContextPrompts, PromptTokens

__all__ = ["ContextPrompts", "PromptTokens"]
