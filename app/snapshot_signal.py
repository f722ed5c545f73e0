"""A same-host wake-up from the learner to the gunicorn workers when it publishes a snapshot.

Workers find new model snapshots by asking the database every `MODEL_CHECK_SECONDS`
(experiments/policies.py), which works across hosts and after any failure, but costs half
that period in freshness on average. When the learner and the workers share a host, as
under `tailor serve`, they also share a directory (`TAILOR_SIGNAL_DIR`): each worker's
watcher thread listens on a Unix datagram socket there and blocks on it (the GIL released)
instead of sleeping, and the learner sends one byte to every socket of the directory after
each snapshot commit. The watcher then checks the database at once. A lost or missing
signal costs nothing but that delay: the periodic check still runs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from pathlib import Path

ENV = "TAILOR_SIGNAL_DIR"
SUFFIX = ".sock"


class Listener:
    """One process's socket in the directory; `wait` returns early when signalled."""

    def __init__(self, directory: str) -> None:
        self.path = str(Path(directory) / f"{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._socket.bind(self.path)
        except OSError:
            self._socket.close()
            raise

    def wait(self, seconds: float) -> bool:
        """Block up to `seconds`; True when signalled (every pending signal consumed)."""
        self._socket.settimeout(max(seconds, 0.001))
        try:
            self._socket.recv(64)
        except (TimeoutError, OSError):
            return False
        self._socket.setblocking(False)
        with contextlib.suppress(BlockingIOError, OSError):
            while self._socket.recv(64):  # several snapshots meanwhile: one check
                pass
        return True

    def interrupt(self) -> None:
        """Wake a thread blocked in `wait` (closing the socket would not, on Linux)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            with contextlib.suppress(OSError):
                sender.sendto(b"0", self.path)

    def close(self) -> None:
        self._socket.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def listener(directory: str | None) -> Listener | None:
    """A listener in `directory` (None when no directory is configured or usable)."""
    if not directory:
        return None
    try:
        return Listener(directory)
    except OSError:
        return None


def notify(directory: str | None) -> int:
    """Signal every listener of `directory`; how many were reached. Sockets whose process
    is gone are removed."""
    if not directory:
        return 0
    reached = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        for path in Path(directory).glob(f"*{SUFFIX}"):
            try:
                sender.sendto(b"1", str(path))
                reached += 1
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            except (BlockingIOError, OSError):
                continue  # its queue is full: it has signals to read already
    return reached
