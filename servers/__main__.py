"""``python -m servers MPM ...``: run one of the MPMs, or signal a running one as apachectl does.

    python -m servers prefork --listen 127.0.0.1:8080 [--config mpm.yaml] [--app pkg.mod:app]
    python -m servers prefork --show-config [--config mpm.yaml] [--set KeepAliveTimeout=2]
    python -m servers prefork -k graceful --pidfile run/httpd.pid

When the server is ready it prints exactly one line, ``listening on
http://HOST:PORT``, to stdout (``--listen 127.0.0.1:0`` picks a free port).
``-k start`` runs in the foreground (like ``httpd -DFOREGROUND``); ``-k stop``,
``restart``, ``graceful`` and ``graceful-stop`` send TERM, HUP, USR1 and WINCH
to the PID in the pidfile.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .config import ConfigError, format_config, load_config, parse_override
from .mpm import MPM_NAMES, get_mpm

#: apachectl's -k verbs and the signal each sends to the parent (httpd signals, see docs/mpm-model.md §7)
K_SIGNALS = {
    "stop": signal.SIGTERM,
    "restart": signal.SIGHUP,
    "graceful": signal.SIGUSR1,
    "graceful-stop": signal.SIGWINCH,
}


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m servers``."""
    p = argparse.ArgumentParser(prog="python -m servers", description="Run a Python httpd-style MPM server.")
    p.add_argument("mpm", choices=MPM_NAMES, help="the Multi-Processing Module")
    p.add_argument("--listen", action="append", metavar="HOST:PORT",
                   help="address to listen on (repeatable; port 0 picks a free port); default 127.0.0.1:8080")
    p.add_argument("--config", metavar="FILE", help="YAML file of httpd directives (see docs/config.md)")
    p.add_argument("--app", metavar="MODULE:CALLABLE", default="servers.apps:app",
                   help="WSGI application to serve (default: the built-in servers.apps:app)")
    p.add_argument("--set", action="append", default=[], metavar="Directive=VALUE",
                   help="override one directive (repeatable), e.g. --set KeepAliveTimeout=2")
    p.add_argument("--pidfile", metavar="PATH", help="PidFile (overrides the configuration)")
    p.add_argument("--show-config", action="store_true", help="print the effective configuration and exit")
    p.add_argument("-k", dest="k", choices=["start", *K_SIGNALS], help="apachectl-style control verb")
    return p


def _load(args) -> object:
    overrides: dict[str, object] = {}
    for item in args.set:
        key, value = parse_override(item)
        overrides[key] = value
    if args.listen:
        overrides["Listen"] = args.listen
    if args.pidfile:
        overrides["PidFile"] = args.pidfile
    return load_config(args.mpm, args.config, overrides)


def _signal_running(cfg, verb: str) -> int:
    path = cfg.PidFile
    if not path:
        print("error: -k needs a pidfile (--pidfile or PidFile in the configuration)", file=sys.stderr)
        return 1
    try:
        with open(path) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        print(f"httpd (no pid file) not running ({path})", file=sys.stderr)
        return 1
    try:
        os.kill(pid, K_SIGNALS[verb])
    except ProcessLookupError:
        print(f"httpd (pid {pid}?) not running", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        cfg = _load(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.show_config:
        sys.stdout.write(format_config(cfg))
        return 0
    if args.k and args.k != "start":
        return _signal_running(cfg, args.k)
    for note in getattr(cfg, "notes", ()):
        print(f"note: {note}", file=sys.stderr)
    from .mpm.parent import Parent, StartupError
    from .wsgi import load_app

    try:
        app = load_app(args.app)
    except Exception as exc:
        print(f"error: cannot load app {args.app}: {exc}", file=sys.stderr)
        return 2
    mpm = get_mpm(args.mpm)
    try:
        parent = Parent(mpm, cfg, app, reload_config=lambda: _load(args))
    except StartupError as exc:  # e.g. an error log that cannot be opened (httpd: AH00091)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return parent.run()


if __name__ == "__main__":
    sys.exit(main())
