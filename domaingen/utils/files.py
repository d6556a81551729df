"""Crash-safe file writing."""
import os
import tempfile


def atomic_write(path: str, write) -> None:
    """Call ``write(file)`` on a temporary binary file next to ``path``, fsync it, then rename it
    over ``path``: a crash at any moment leaves the old file or the new one, never a torn one."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
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
