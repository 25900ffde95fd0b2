"""``mpm-server`` / ``python -m servers``: run one of the MPMs, or signal a running one as apachectl does.

    mpm-server -w 4 -b 127.0.0.1:8000 app          # event (httpd's default MPM), app.py's application
    mpm-server prefork --connections 50 myapp:app  # a pool of 50 prefork children
    mpm-server worker -c mpm.yaml --set KeepAliveTimeout=2 --show-config
    mpm-server -k graceful --pidfile run/httpd.pid
    mpm-server -V                                  # as httpd -V: version, MPM, threaded/forked, build

The flags and their mapping onto httpd's directives are in :mod:`servers.cli`. When the
server is ready it prints exactly one line, ``listening on http://HOST:PORT``, to stdout
(``-b 127.0.0.1:0`` picks a free port). ``-k start`` runs in the foreground (like
``httpd -DFOREGROUND``); ``-k stop``, ``restart``, ``graceful`` and ``graceful-stop`` send
TERM, HUP, USR1 and WINCH to the PID in the pidfile.
"""

from __future__ import annotations

import difflib
import importlib
import os
import platform
import signal
import struct
import sys
import traceback
from typing import Sequence

from .cli import CliError, Resolved, parse_args, prepare_paths, resolve, show_config
from .config import ConfigError, default_config
from .mpm import MPM_NAMES, get_mpm
from .mpm.spec import MPMS
from .version import package_version

#: apachectl's -k verbs and the signal each sends to the parent (httpd signals, see docs/mpm-model.md §7)
K_SIGNALS = {
    "stop": signal.SIGTERM,
    "restart": signal.SIGHUP,
    "graceful": signal.SIGUSR1,
    "graceful-stop": signal.SIGWINCH,
}


# --------------------------------------------------------------------------
# -v and -V, in httpd's shape


def version_lines() -> list[str]:
    """httpd -v: ``Server version:`` (with the runtime, so ``-V | grep -i version`` finds it) and ``Server built:``."""
    import httptools

    runtime = f"{platform.python_implementation()} {platform.python_version()}, httptools {httptools.__version__}"
    return [f"Server version: mpm-harness/{package_version()} ({runtime})",
            f"Server built:   Python {' '.join(sys.version.split())}"]


def full_version(mpm: str) -> str:
    """httpd -V: the version lines, what is loaded, the MPM as ap_mpm_query answers, the build's facts."""
    import httptools
    import yaml

    from .http.response import SERVER_SOFTWARE

    spec = MPMS[mpm]
    host, port = default_config(mpm).Listen[0]
    lines = [
        *version_lines(),
        f"Server loaded:  Python {platform.python_version()}, httptools {httptools.__version__}, "
        f"PyYAML {yaml.__version__}",
        f"Architecture:   {8 * struct.calcsize('P')}-bit",
        f"Server MPM:     {mpm}",
        f"  threaded:     {'yes (fixed thread count)' if spec.threaded else 'no'}",
        "    forked:     yes (variable process count)",
        "Server compiled with....",
        f" -D MAX_SERVER_LIMIT={spec.hard_server_limit}",
        f" -D MAX_THREAD_LIMIT={spec.hard_thread_limit}",
    ]
    if spec.asynchronous:
        lines.append(" -D AP_MPMQ_IS_ASYNC")
    lines += [
        f' -D DEFAULT_LISTEN="{host}:{port}"',
        f' -D SERVER_SOFTWARE="{SERVER_SOFTWARE}"',
        f' -D SERVER_ROOT="{os.path.dirname(os.path.abspath(__file__))}"',
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# -k


def _signal_running(pidfile: str | None, verb: str) -> int:
    if not pidfile:
        print("error: -k needs a pidfile (--pidfile or PidFile in the configuration)", file=sys.stderr)
        return 1
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        print(f"httpd (no pid file) not running ({pidfile})", file=sys.stderr)
        return 1
    try:
        os.kill(pid, K_SIGNALS[verb])
    except ProcessLookupError:
        print(f"httpd (pid {pid}?) not running", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------
# Serving


def _load_app(spec: str, word: str | None):
    """The application, or None after printing why it cannot be loaded (and its own traceback)."""
    from .wsgi import AppLoadError, load_app

    try:
        return load_app(spec)
    except AppLoadError as exc:
        hint = ""
        close = difflib.get_close_matches((word or "").lower(), MPM_NAMES, n=1) if word and ":" not in word else []
        if close:
            hint = f" (or did you mean the MPM {close[0]!r}?)"
        print(f"error: cannot load app {spec!r}: {exc}{hint}", file=sys.stderr)
        if exc.__cause__ is not None:
            sys.stderr.write(_user_traceback(exc.__cause__))
        return None


def _user_traceback(exc: BaseException) -> str:
    """The traceback of the application's own error, from its first frame outside the import machinery."""
    tb = exc.__traceback__
    machinery = (os.path.abspath(sys.modules["servers.wsgi"].__file__), "<frozen importlib", importlib.__file__)
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename.startswith(machinery):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _serve(args, resolved: Resolved) -> int:
    from .mpm.parent import Parent, StartupError

    for note in (*resolved.notes(), *resolved.cfg.notes):
        print(f"note: {note}", file=sys.stderr)
    app = _load_app(args.app, args.app_word)
    if app is None:
        return 2
    try:
        parent = Parent(get_mpm(args.mpm), resolved.cfg, app, reload_config=lambda: resolve(args.mpm, args).cfg)
    except StartupError as exc:  # e.g. an error log that cannot be opened (httpd: AH00091)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return parent.run()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mpm-server`` and ``python -m servers``; returns the exit status."""
    args = parse_args(argv)
    if args.version == "short":
        print("\n".join(version_lines()))
        return 0
    if args.version == "full":
        sys.stdout.write(full_version(args.mpm))
        return 0
    try:
        prepare_paths(args.chdir, args.pythonpath)
        resolved = resolve(args.mpm, args)
    except (ConfigError, CliError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.show_config:
        sys.stdout.write(show_config(resolved))
        return 0
    if args.k and args.k != "start":
        return _signal_running(resolved.cfg.PidFile, args.k)
    return _serve(args, resolved)


if __name__ == "__main__":
    sys.exit(main())
