"""A throwaway PostgreSQL cluster (initdb in a temporary directory, its own port) that a
fault test may stop and start at will without disturbing the machine's shared server."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench._servers import free_port


def bin_dir() -> Path | None:
    root = Path("/usr/lib/postgresql")
    versions = sorted(root.iterdir(), key=lambda p: p.name) if root.is_dir() else []
    found = [v / "bin" for v in versions if (v / "bin" / "initdb").exists()]
    return found[-1] if found else None


def _as_postgres(*command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *command], capture_output=True, text=True,
                          timeout=timeout, check=True)


@dataclass
class PrivateCluster:
    """initdb → start → stop(mode)/start … → destroy. Superuser `root`, trust auth."""

    directory: Path
    port: int
    bin: Path

    @classmethod
    def create(cls) -> PrivateCluster:
        pg_bin = bin_dir()
        if pg_bin is None or shutil.which("runuser") is None:
            raise RuntimeError("needs PostgreSQL's initdb and runuser")
        directory = Path(tempfile.mkdtemp(prefix="tailor-pg-"))
        shutil.chown(directory, "postgres", "postgres")
        cluster = cls(directory, free_port(), pg_bin)
        _as_postgres(str(pg_bin / "initdb"), "-D", str(directory / "data"), "-U", "root",
                     "-A", "trust", "--no-sync")
        cluster.start()
        return cluster

    @property
    def admin_url(self) -> str:
        return f"postgresql://root@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        _as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-w",
                     "-l", str(self.directory / "log"), "-o",
                     f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1",
                     "start")

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-w",
                     "-m", mode, "stop")

    def ready(self) -> bool:
        return subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p",
                               str(self.port)], timeout=10).returncode == 0

    def wait_ready(self, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while not self.ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the private PostgreSQL did not come back")
            time.sleep(0.05)

    def destroy(self) -> None:
        if self.ready():
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
