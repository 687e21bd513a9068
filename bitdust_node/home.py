"""The node's home folder: where each file lives, the API secret, and the running-node lock."""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
from pathlib import Path

from bitdust_node.crypto.keys import write_secret_file

SETTINGS_FILE = "config.json"
API_SECRET_FILE = "apisecret"
LOCK_FILE = "node.lock"
LOG_DIR = "logs"
LOG_FILE = "node.log"


def default_home() -> Path:
    return Path(os.environ.get("BITDUST_HOME") or Path.home() / ".bitdust")


def ensure_home(home: Path) -> Path:
    """Create the home (private to its owner) if it does not exist."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


# the home's mode when a web server must reach one public folder inside it: enter, never list
TRAVERSABLE_HOME = 0o711


def open_for_web_server(home: Path, public: Path) -> None:
    """Let another user (Apache, nginx) reach `public` in the home while the rest stays private.

    Others may then enter the home but not list it; every other top-level entry is made private
    first, since folders made before the node's umask (0077) was set may be 0755.
    """
    for entry in home.iterdir():
        if entry != public and not entry.is_symlink():
            mode = entry.stat().st_mode & 0o7777
            if mode & 0o077:
                entry.chmod(mode & ~0o077)
    home.chmod(TRAVERSABLE_HOME)


def read_api_secret(home: Path) -> str | None:
    try:
        return (home / API_SECRET_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure_api_secret(home: Path) -> str:
    """Return the REST secret, generating it (mode 0600) on first use."""
    existing = read_api_secret(home)
    if existing:
        return existing
    secret = secrets.token_urlsafe(32)
    write_secret_file(home / API_SECRET_FILE, secret.encode() + b"\n")
    return secret


class HomeLocked(Exception):
    """Another node process already runs in this home."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(f"a node is already running in this home (pid {pid})")
        self.pid = pid


class HomeLock:
    """An flock held for the node's lifetime: a crashed node leaves no stale lock behind."""

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES):
                raise HomeLocked(running_pid(self.path.parent)) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def running_pid(home: Path) -> int | None:
    """The pid of the node running in this home, or None: the lock is held exactly while it runs."""
    path = home / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
