"""Errors raised when a dataset on disk does not match what the loaders expect."""

from domaingen.utils.errors import InputError

README_HINT = "See datasets/README.md for the expected dataset layouts."


class DatasetLayoutError(InputError, FileNotFoundError):
    """A dataset folder, split file, annotation or image file is missing."""

    def __init__(self, message: str):
        super().__init__(f"{message}\n{README_HINT}")


class DatasetAnnotationError(InputError, ValueError):
    """An annotation file exists but is unreadable or holds invalid content."""

    def __init__(self, message: str):
        super().__init__(f"{message}\n{README_HINT}")
