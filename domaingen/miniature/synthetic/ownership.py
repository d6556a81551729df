"""A generated tree is replaced only when every file in it is the generator's."""
import os
import shutil
from typing import Iterable, List, Optional

from domaingen.utils.errors import InputError


class GeneratedTreeError(InputError, FileExistsError):
    """A folder the generator would replace holds a file it did not write."""


def tree_files(root: str, folders: Iterable[str]) -> List[str]:
    """Every file below ``root/<folder>`` for ``folders``, relative to ``root``, sorted."""
    found = []
    for folder in folders:
        for base, _, files in os.walk(os.path.join(root, folder)):
            found += [os.path.relpath(os.path.join(base, f), root) for f in files]
    return sorted(found)


def clear_for_generation(root: str, folders: Iterable[str], marker: str,
                         previous: Optional[dict]) -> None:
    """Make ``root/<folder>`` ready to be written: remove a stale generated tree (the
    ``marker`` file's ``files`` list names every file the generator wrote there). A file
    the generator did not write (a user's, or any file where no marker is) stops it, named."""
    folders = list(folders)
    ours = set((previous or {}).get("files", ()))
    foreign = [f for f in tree_files(root, folders) if f not in ours]
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise GeneratedTreeError(
            f"{os.path.join(root, foreign[0])}{more} was not written by the synthetic data "
            f"generator, which would replace {', '.join(os.path.join(root, f) for f in folders)}"
            f": move those files elsewhere, or generate into another root (--root)")
    if previous is not None:
        os.remove(marker)
    for folder in folders:
        shutil.rmtree(os.path.join(root, folder), ignore_errors=True)
