"""One writer per OUTPUT_DIR: the main process of a run holds a lock file in it.

The lock is an ``flock`` on ``OUTPUT_DIR/run.lock``, which the operating system releases when the
holding process ends in any way (``kill -9`` included): a file left by a dead run blocks nothing.
The file names the holder (process id, host, start time, command) for the refusal message and
is removed when the run ends normally.
"""
import atexit
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time

from domaingen.utils.errors import InputError

logger = logging.getLogger(__name__)

LOCK_FILE = "run.lock"
_held = {}  # real path of the lock file -> (open file descriptor, id of the holding process)


class OutputDirError(InputError, RuntimeError):
    """OUTPUT_DIR cannot be written, or another run is writing it; the message says which."""


def _describe(holder: dict) -> str:
    return (f"process {holder.get('pid', '?')} on {holder.get('host', '?')} (started "
            f"{holder.get('started', '?')}: {holder.get('command', '?')})")


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}


def _open(path: str, output_dir: str) -> int:
    if os.path.isfile(output_dir):
        raise OutputDirError(f"OUTPUT_DIR {output_dir} is a file: set OUTPUT_DIR to a folder")
    try:
        os.makedirs(output_dir, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise OutputDirError(f"OUTPUT_DIR {output_dir} is not writable ({e.strerror}): set "
                             f"OUTPUT_DIR to a folder this user can write") from None


def lock_output_dir(output_dir: str) -> str:
    """Take the lock of ``output_dir`` for this process (re-entrant) until it ends or calls
    :func:`release_output_dir`; raise OutputDirError naming the holder if another process has
    it. Returns a line on the ended run whose lock file was taken over, or ""."""
    path = os.path.realpath(os.path.join(output_dir, LOCK_FILE))
    if path in _held and _held[path][1] == os.getpid():
        return ""
    while True:
        fd = _open(path, output_dir)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_holder(fd)
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES):  # e.g. a filesystem without locks
                logger.warning(f"cannot lock {path} ({e.strerror}): running without the check "
                               f"that no other run writes to OUTPUT_DIR")
                return ""
            raise OutputDirError(
                f"OUTPUT_DIR {output_dir} is in use by another run: {_describe(holder)} holds "
                f"{path}. Two runs in one OUTPUT_DIR overwrite each other's checkpoints and "
                f"metrics: wait for that run to end or stop it, or set another OUTPUT_DIR."
            ) from None
        try:  # the holder before us may have removed the file while we waited: lock the new one
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _read_holder(fd)
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    _held[path] = (fd, os.getpid())
    return f"{path} was left by {_describe(previous)}, which has ended: taken over" if previous \
        else ""


def release_output_dir(output_dir: str) -> None:
    """Remove and release this process's lock of ``output_dir`` (nothing if it holds none)."""
    path = os.path.realpath(os.path.join(output_dir, LOCK_FILE))
    fd, pid = _held.pop(path, (None, None))
    if pid == os.getpid():  # not in a forked child (e.g. a loader worker), which shares the fd
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        os.close(fd)


@atexit.register
def _release_all() -> None:
    for path in list(_held):
        release_output_dir(os.path.dirname(path))
