"""httpd-style error log lines.

Format of httpd 2.4's ErrorLogFormat default::

    [Thu Nov 26 07:00:00.123456 2026] [mpm_prefork:error] [pid 123] AH00161: server reached ...

Levels follow LogLevel (emerg alert crit error warn notice info debug);
messages above the configured level are dropped, except ``notice``, which
httpd always logs (log.c: notice is exempt from LogLevel for the main server). Writes are unbuffered
line writes so that several processes can share one file (O_APPEND).
"""

from __future__ import annotations

import os
import sys
import time

LEVELS = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")


class ErrorLog:
    """One process's handle on the shared error log."""

    def __init__(self, path: str | None, level: str = "warn", module: str = "core") -> None:
        self.path = path
        self.module = module
        self.max_level = LEVELS.index(level) if level in LEVELS else LEVELS.index("warn")
        self._fd = self._open()

    def _open(self) -> int:
        if self.path:
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return sys.stderr.fileno()

    def enabled(self, level: str) -> bool:
        """True when ``level`` messages are written at the configured LogLevel."""
        return level == "notice" or LEVELS.index(level) <= self.max_level

    def log(self, level: str, message: str, code: str | None = None) -> None:
        """Write one line if ``level`` passes LogLevel; never raises (a full disk must not kill a child)."""
        if level != "notice" and LEVELS.index(level) > self.max_level:
            return
        now = time.time()
        stamp = time.strftime("%a %b %d %H:%M:%S", time.localtime(now)) + ".%06d" % int((now % 1) * 1e6)
        stamp += time.strftime(" %Y", time.localtime(now))
        prefix = f"{code}: " if code else ""
        line = f"[{stamp}] [{self.module}:{level}] [pid {os.getpid()}] {prefix}{message}\n"
        try:
            os.write(self._fd, line.encode("utf-8", "replace"))
        except OSError:
            pass

    def __call__(self, level: str, message: str) -> None:
        self.log(level, message)

    def reopen(self) -> None:
        """Reopen the file (after a restart), keeping stderr as is."""
        if self.path:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = self._open()
