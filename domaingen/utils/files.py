"""Crash-safe file writing; digests of folders."""
import hashlib
import os
import tempfile

from .errors import InputError


class OutputFileError(InputError, OSError):
    """A file cannot be written where the user asked (a folder there, a folder that cannot be
    made or written); ``errno`` is the operating system's."""

    def __init__(self, message: str, errno: int = None):
        super().__init__(message)
        self.errno = errno


def atomic_write(path: str, write) -> None:
    """Call ``write(file)`` on a temporary binary file next to ``path``, fsync it, then rename it
    over ``path``: a crash at any moment leaves the old file or the new one, never a torn one.
    A target that cannot be written is an OutputFileError naming it."""
    if os.path.isdir(path):
        raise OutputFileError(f"{path} is a folder: name a file to write")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                                   suffix=".tmp")
    except OSError as e:
        raise OutputFileError(f"Cannot write {path}: {e.strerror} ({directory} must be a folder "
                              f"this user can write)", e.errno) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def tree_sha256(root: str) -> str:
    """sha256 over the relative paths and bytes of every file below ``root``."""
    h = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            h.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()
