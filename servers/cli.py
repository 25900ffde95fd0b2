"""The command line of ``mpm-server`` (``python -m servers``): gunicorn's surface on httpd's directives.

Every flag is shorthand for httpd directives (``-b`` and ``--listen`` for ``Listen``,
``-w``/``--threads``/``--connections`` for the process and thread limits, ``--pidfile``
for ``PidFile``); the directives stay the source of truth: one given in the ``--config``
file or by ``--set`` wins over the flag that maps to it, and the flag is reported as not
applied. :func:`resolve` builds the effective configuration and remembers which flag set
which directive, so ``--show-config`` can say so (:func:`show_config`).

The sizing flags size a fixed pool the way an httpd administrator would write it:
StartServers and MaxRequestWorkers for the pool, ServerLimit and the spare-server bounds
moved only as far as needed so that httpd's maintenance neither retires a child of the
pool nor reports the limit at the first request (:func:`sizing`; docs/servers.md,
"Command line").
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence


from .config import OVERRIDES, ConfigError, ServerConfig, directive_sources, format_config, load_config, parse_override
from .mpm.spec import MPM_NAMES, MPMS, MPMSpec

#: httpd 2.4 builds event where the platform supports it (its default MPM since 2.4)
DEFAULT_MPM = "event"
#: the built-in demo application served when no APP is given
DEFAULT_APP = "servers.apps:app"
#: the port of a ``-b HOST`` without one, as gunicorn (its default bind is 127.0.0.1:8000)
GUNICORN_DEFAULT_PORT = 8000
#: apachectl's -k verbs (start runs in the foreground, the others signal the pidfile's PID)
K_VERBS = ("start", "stop", "restart", "graceful", "graceful-stop")
#: gunicorn's worker classes (its -k) and the MPM that does the same job, for -k's error message
GUNICORN_WORKER_CLASSES = {"sync": "prefork", "gthread": "worker", "gevent": "event", "eventlet": "event",
                           "tornado": "event", "uvicorn.workers.UvicornWorker": "event"}

_EPILOG = """\
Flags are shorthand for httpd directives, which stay the source of truth: a directive
from --config FILE or --set wins over the flag that maps to it (the flag is then reported
as not applied), and --show-config marks each directive a flag set with '# from FLAG'.

  -b/--bind, --listen   Listen            --pidfile   PidFile
  -w N                  StartServers N, MaxRequestWorkers N x ThreadsPerChild, and
                        ServerLimit / spare bounds widened to hold N children
  --threads T           ThreadsPerChild T (ThreadLimit raised to fit)
  --connections N       prefork: as -w N; worker/event: ceil(N / ThreadsPerChild) children

examples:
  mpm-server -w 4 -b 127.0.0.1:8000 app            event MPM, app.py's `application`
  mpm-server prefork --connections 50 myapp:app    50 prefork children
  mpm-server worker -c mpm.yaml --show-config      the effective directives
  mpm-server -k graceful --pidfile run/httpd.pid   apachectl-style control
"""


class CliError(ValueError):
    """A command line that cannot be run; the message names the flag and the value."""


@dataclass(frozen=True)
class FlagSetting:
    """One directive a flag asks for: its name, its value and the flag(s) as typed."""

    directive: str
    value: Any
    flag: str


@dataclass(frozen=True)
class Resolved:
    """The effective configuration, and which flags set which directives (or were overruled)."""

    cfg: ServerConfig
    applied: tuple[FlagSetting, ...]
    overruled: tuple[tuple[FlagSetting, str], ...]

    def notes(self) -> list[str]:
        """One line per flag that a directive from the file or --set overruled."""
        return [f"{s.flag} not applied: {s.directive} is set by {source} "
                "(a directive from --config/--set beats a flag)" for s, source in self.overruled]


# --------------------------------------------------------------------------
# The parser


class _ListenAction(argparse.Action):
    """-b and --listen append to one ordered list of (flag as typed, Listen value)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        text = str(values)
        try:
            value = parse_bind(text) if option_string in ("-b", "--bind") else text
        except CliError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        items = list(getattr(namespace, self.dest) or [])
        items.append((f"{option_string} {text}", value))
        setattr(namespace, self.dest, items)


def _positive(text: str) -> int:
    if not re.fullmatch(r"\s*\d+\s*", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _k_verb(text: str) -> str:
    if text in K_VERBS:
        return text
    mpm = GUNICORN_WORKER_CLASSES.get(text)
    hint = (f"; gunicorn's -k chooses a worker class, here the MPM does: for {text!r} run the {mpm} MPM"
            if mpm else "")
    raise argparse.ArgumentTypeError(f"-k is apachectl's control verb, one of {', '.join(K_VERBS)}; "
                                     f"got {text!r}{hint}")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command line: ``[MPM] [APP]`` and gunicorn's and apachectl's flags (see the module doc)."""
    p = argparse.ArgumentParser(
        prog=prog or _prog(), usage="%(prog)s [MPM] [APP] [options]", epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one of the Python httpd MPMs serving a WSGI application.\n\n"
                    f"MPM: {', '.join(MPM_NAMES)} (default {DEFAULT_MPM}, httpd 2.4's default MPM).\n"
                    "APP: module[:callable] (default callable 'application', as mod_wsgi and gunicorn;\n"
                    "     'module:factory()' calls a factory); default the built-in demo, " + DEFAULT_APP + ".")
    p.add_argument("words", nargs="*", metavar="MPM APP", help=argparse.SUPPRESS)
    serve = p.add_argument_group("what to serve, where")
    serve.add_argument("--app", metavar="MODULE[:CALLABLE]", help="the APP, as an option")
    serve.add_argument("-b", "--bind", dest="listen", action=_ListenAction, metavar="ADDRESS",
                       help="listen on ADDRESS, as gunicorn: HOST:PORT, :PORT (every IPv4 address, as gunicorn), "
                            f"[V6]:PORT, HOST (port {GUNICORN_DEFAULT_PORT}); repeatable; sets Listen. "
                            "unix:PATH and fd://N are refused: httpd's Listen is TCP only")
    serve.add_argument("--listen", dest="listen", action=_ListenAction, metavar="ADDRESS",
                       help="httpd's Listen as a flag: HOST:PORT, [V6]:PORT, *:PORT (every address) or a PORT "
                            "alone, which here means 127.0.0.1:PORT and NOT every address as in httpd, so a "
                            "test server is never exposed by accident (write *:PORT or -b :PORT for that); "
                            "repeatable; default 127.0.0.1:8080")
    serve.add_argument("--chdir", metavar="DIR", help="change to DIR first (as gunicorn's --chdir and httpd's -d): "
                       "the APP is imported from it, and relative paths (--config, PidFile, ErrorLog) start there")
    serve.add_argument("--pythonpath", metavar="DIRS",
                       help="comma-separated directories put first on the Python path, in that order (as gunicorn)")
    size = p.add_argument_group("sizing (each maps onto directives; see below)")
    size.add_argument("-w", "--workers", type=_positive, metavar="N",
                      help="N child processes, as gunicorn's workers: a fixed pool (StartServers N, "
                           "MaxRequestWorkers N x ThreadsPerChild, ServerLimit and spare bounds widened to fit)")
    size.add_argument("--threads", type=_positive, metavar="T",
                      help="worker threads per child (ThreadsPerChild; worker and event). prefork refuses T > 1 "
                           "(gunicorn turns sync into gthread there; here choose the worker MPM)")
    size.add_argument("--connections", type=_positive, metavar="N",
                      help="size the server for N connections served at once: prefork N children (as -w N); "
                           "worker/event ceil(N / ThreadsPerChild) children (with -w P: ThreadsPerChild = ceil(N / P))")
    conf = p.add_argument_group("configuration")
    conf.add_argument("-c", "--config", metavar="FILE",
                      help="YAML file of httpd directives by their Apache names (docs/config.md); unlike "
                           "gunicorn's -c it is not Python")
    conf.add_argument("--set", action="append", default=[], metavar="Directive=VALUE",
                      help="one directive (repeatable), like httpd -C, e.g. --set KeepAliveTimeout=2")
    conf.add_argument("-p", "--pid", "--pidfile", dest="pidfile", metavar="PATH", help="PidFile (gunicorn's -p)")
    conf.add_argument("--show-config", action="store_true",
                      help="print the effective directives ('# from FLAG' above each one a flag set) and exit")
    ctl = p.add_argument_group("control and version (as httpd and apachectl)")
    ctl.add_argument("-k", dest="k", type=_k_verb, metavar="VERB",
                     help=f"apachectl's control verb: {', '.join(K_VERBS)} (start runs in the foreground; the "
                          "others signal the PID in the pidfile). NOT gunicorn's -k (worker class): the MPM is "
                          "that choice here (sync ~ prefork, gthread ~ worker)")
    ctl.add_argument("-v", "--version", dest="version", action="store_const", const="short",
                     help="print the version and exit (httpd -v)")
    ctl.add_argument("-V", dest="version", action="store_const", const="full",
                     help="print the version, the MPM and the build's settings and exit (httpd -V)")
    return p


def _prog() -> str:
    """How the user called us, for usage lines: the console script or ``python -m servers``."""
    name = os.path.basename(sys.argv[0] if sys.argv else "")
    return "mpm-server" if name.startswith("mpm-server") else "python -m servers"


def parse_args(argv: Sequence[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    """Parse the command line; ``mpm`` and ``app`` are resolved from the positional words."""
    parser = build_parser(prog)
    args = parser.parse_intermixed_args(argv)
    try:
        args.mpm, args.app_word = split_words(args.words)
    except CliError as exc:
        parser.error(str(exc))
    if args.app_word and args.app and args.app_word != args.app:
        parser.error(f"APP {args.app_word!r} and --app {args.app!r} disagree: give one")
    args.app = args.app_word or args.app or DEFAULT_APP
    return args


def split_words(words: Sequence[str]) -> tuple[str, str | None]:
    """``[MPM] [APP]``: the MPM when the first word names one (default event), then the APP."""
    rest = list(words)
    mpm = rest.pop(0).lower() if rest and rest[0].lower() in MPM_NAMES else DEFAULT_MPM
    if len(rest) > 1:
        if rest[1].lower() in MPM_NAMES:
            raise CliError(f"the MPM comes first: '{rest[1]} {rest[0]}', not '{rest[0]} {rest[1]}'")
        raise CliError(f"expected [MPM] [APP], got {' '.join(words)!r} (one APP at most)")
    return mpm, (rest[0] if rest else None)


# --------------------------------------------------------------------------
# -b: gunicorn's address forms onto Listen


def parse_bind(text: str) -> str:
    """gunicorn's ``-b`` forms as a Listen value (``HOST:PORT`` or ``[V6]:PORT``).

    ``HOST:PORT``; ``:PORT`` is every IPv4 address (gunicorn binds ``''``, INADDR_ANY);
    ``[V6]:PORT``; ``HOST`` alone takes gunicorn's port 8000; ``tcp://`` is dropped as
    gunicorn does. ``unix:PATH`` and ``fd://N`` are refused: httpd's Listen is TCP only.
    A bare number is refused as ambiguous (gunicorn would take it for a host name).
    """
    t = text.strip()
    if t.startswith(("unix:", "fd://")):
        kind = "unix sockets" if t.startswith("unix:") else "inherited file descriptors"
        raise CliError(f"{text!r}: {kind} are not supported (httpd's Listen, which -b sets, takes TCP "
                       "addresses): give HOST:PORT")
    t = t.removeprefix("tcp://")
    if t.startswith("["):
        match = re.fullmatch(r"\[([^\]]*)\](?::(\S*))?", t)
        host, port = (match.group(1), match.group(2)) if match else ("", None)
        if not match or not _is_ipv6(host):
            raise CliError(f"{text!r}: expected [IPV6]:PORT with an IPv6 address in the brackets")
        return f"[{host}]:{_bind_port(text, port)}"
    if t.count(":") > 1:
        raise CliError(f"{text!r}: IPv6 addresses need brackets, e.g. [::1]:8000")
    if re.fullmatch(r"\d+", t):
        raise CliError(f"{text!r} is ambiguous: give :{t} for every address (as gunicorn), 127.0.0.1:{t} for "
                       f"loopback only, or --listen {t} (httpd's Listen; loopback here)")
    host, sep, port = t.partition(":")
    if not host and not sep:
        raise CliError("empty address: give HOST:PORT or :PORT")
    if not re.fullmatch(r"[A-Za-z0-9.*_-]*", host):
        raise CliError(f"{text!r}: {host!r} is not a host name or IPv4 address")
    host = "0.0.0.0" if host in ("", "*") else host
    return f"{host}:{_bind_port(text, port if sep else None)}"


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _bind_port(text: str, port: str | None) -> int:
    if port is None or port == "":
        return GUNICORN_DEFAULT_PORT
    if not re.fullmatch(r"\d{1,5}", port) or int(port) > 65535:
        raise CliError(f"{text!r}: {port!r} is not a port number (0-65535; 0 picks a free port)")
    return int(port)


# --------------------------------------------------------------------------
# Sizing: -w, --threads, --connections onto the process and thread limits


def sizing(mpm: str, cfg: ServerConfig, workers: int | None = None, threads: int | None = None,
           connections: int | None = None) -> list[FlagSetting]:
    """The directives the sizing flags stand for, computed on ``cfg`` (the file and --set applied).

    A pool of P children x T threads: StartServers P, MaxRequestWorkers P x T, ServerLimit
    raised to P when lower; the spare floor lowered to one child's worth (1 process, T threads),
    so httpd's maintenance reports "reached MaxRequestWorkers" only when the pool is nearly all
    busy, not at the first request, and replaces a child that exited once less than a child's
    worth is idle; the spare ceiling raised to the whole pool, so it never retires an idle child
    of the pool, keeping each MPM's run-hook rule (prefork MaxSpare >= MinSpare + 1,
    worker/event MaxSpare >= MinSpare + T + 1). --threads alone keeps the process limit:
    MaxRequestWorkers = that limit x T.
    """
    flag = " ".join(f"{name} {value}" for name, value in
                    (("-w", workers), ("--threads", threads), ("--connections", connections)) if value)
    if not flag:
        return []
    spec = MPMS[mpm]
    if spec.threaded:
        processes, tpc = _threaded_shape(cfg, workers, threads, connections)
    else:
        processes, tpc = _prefork_shape(workers, threads, connections)
    values: dict[str, int] = {}
    if spec.threaded and (threads or tpc != cfg.ThreadsPerChild):
        values["ThreadsPerChild"] = tpc
        if tpc > cfg.ThreadLimit:
            values["ThreadLimit"] = tpc
    if processes is None:
        if spec.threaded:  # prefork's --threads 1 asks for nothing
            values["MaxRequestWorkers"] = cfg.daemons_limit * tpc
    else:
        values.update(_pool(spec, cfg, processes, tpc))
    return [FlagSetting(name, value, flag) for name, value in values.items()]


def _prefork_shape(workers: int | None, threads: int | None, connections: int | None) -> tuple[int | None, int]:
    """prefork: one connection per process, so -w and --connections say the same thing."""
    if threads and threads > 1:
        raise CliError(f"--threads {threads}: prefork runs one thread per process (it has no ThreadsPerChild); "
                       "use -w for more processes, or the worker or event MPM for threads (gunicorn switches "
                       "its sync worker to gthread here)")
    if workers and connections and workers != connections:
        raise CliError(f"-w {workers} and --connections {connections} disagree: a prefork child serves one "
                       "connection at a time; give one of them")
    return workers or connections, 1


def _threaded_shape(cfg: ServerConfig, workers: int | None, threads: int | None,
                    connections: int | None) -> tuple[int | None, int]:
    """worker/event: (children, ThreadsPerChild) from any two of -w, --threads, --connections."""
    if workers and connections:
        tpc = threads or math.ceil(connections / workers)
        if workers * tpc < connections:
            raise CliError(f"-w {workers} --threads {tpc} serve {workers * tpc} connections at once, fewer than "
                           f"--connections {connections}: give two of the three")
        return workers, tpc
    tpc = threads or cfg.ThreadsPerChild
    if connections:
        return math.ceil(connections / tpc), tpc
    return workers, tpc


def _pool(spec: MPMSpec, cfg: ServerConfig, processes: int, tpc: int) -> dict[str, int]:
    """A fixed pool of ``processes`` x ``tpc`` as httpd directives (see :func:`sizing`)."""
    values = {"StartServers": processes, "MaxRequestWorkers": processes * tpc}
    if processes > cfg.ServerLimit:
        values["ServerLimit"] = processes
    units = processes * tpc  # idle units: processes (prefork) or threads, server-wide
    floor, ceiling = spec.spare_limits(cfg)
    new_floor = min(floor, tpc)
    new_ceiling = max(ceiling, units, new_floor + tpc + (1 if spec.threaded else 0))
    names = ("MinSpareThreads", "MaxSpareThreads") if spec.threaded else ("MinSpareServers", "MaxSpareServers")
    for name, old, new in zip(names, (floor, ceiling), (new_floor, new_ceiling)):
        if new != old:
            values[name] = new
    return values


# --------------------------------------------------------------------------
# Flags under directives


def flag_settings(mpm: str, cfg: ServerConfig, args: argparse.Namespace) -> list[FlagSetting]:
    """Every directive the flags of ``args`` ask for, in flag order (Listen once per address)."""
    out = [FlagSetting("Listen", value, flag) for flag, value in (args.listen or [])]
    if args.pidfile:
        out.append(FlagSetting("PidFile", args.pidfile, f"--pidfile {args.pidfile}"))
    out += sizing(mpm, cfg, args.workers, args.threads, args.connections)
    return out


def named_directives(mpm: str, path: str | None, overrides: Mapping[str, Any]) -> dict[str, str]:
    """The directives the file (top level and the ``mpm`` section) and --set name -> who names them."""
    return {name: "--set" if source == OVERRIDES else source
            for name, source in directive_sources(mpm, path, overrides).items()}


def resolve(mpm: str, args: argparse.Namespace) -> Resolved:
    """The effective configuration: defaults, the flags' directives, the file, --set (later wins).

    Raises ConfigError for the file or --set, CliError naming the flag for a flag's value.
    """
    overrides = dict(parse_override(item) for item in args.set)
    base = load_config(mpm, args.config, overrides)
    wanted = flag_settings(mpm, base, args)
    if not wanted:
        return Resolved(base, (), ())
    named = named_directives(mpm, args.config, overrides)
    applied = tuple(s for s in wanted if s.directive not in named)
    overruled = tuple((s, named[s.directive]) for s in wanted if s.directive in named)
    merged: dict[str, Any] = {}
    for s in applied:
        if s.directive == "Listen":
            merged.setdefault("Listen", []).append(s.value)
        else:
            merged[s.directive] = s.value
    try:
        cfg = load_config(mpm, args.config, {**merged, **overrides})
    except ConfigError as exc:
        flags = " ".join(dict.fromkeys(s.flag for s in applied if s.directive == exc.key))
        if not flags:
            raise
        raise CliError(f"{flags}: {exc}") from None
    return Resolved(cfg, applied, overruled)


def show_config(resolved: Resolved) -> str:
    """format_config's text with ``# from FLAG`` above each directive line a flag set.

    Flags overruled by the file or --set are listed at the top as ``# not applied:`` lines.
    The directive lines themselves are format_config's, unchanged.
    """
    lines = format_config(resolved.cfg).splitlines()
    by_name = {s.directive: s.flag for s in resolved.applied if s.directive != "Listen"}
    listen = [s.flag for s in resolved.applied if s.directive == "Listen"]
    out: list[str] = []
    for line in lines:
        name = line.split(" ", 1)[0]
        flag = listen.pop(0) if name == "Listen" and listen else by_name.get(name)
        if flag:
            out.append(f"# from {flag}")
        out.append(line)
    header = [f"# {note}" for note in resolved.notes()]
    cut = next((i for i, line in enumerate(out) if not line.startswith("# mpm-harness") and
                not line.startswith("# source:")), len(out))
    return "\n".join(out[:cut] + header + out[cut:]) + "\n"


def prepare_paths(chdir: str | None, pythonpath: str | None) -> None:
    """gunicorn's --chdir and --pythonpath, and the working directory first on sys.path.

    The console script's sys.path starts with its bin directory, not the working directory
    (``python -m`` puts the latter first): gunicorn always adds it, so do we, so a user's
    ``app.py`` imports the same way from either.
    """
    if chdir:
        try:
            os.chdir(chdir)
        except OSError as exc:
            raise CliError(f"--chdir {chdir}: {exc.strerror}") from None
    front = [os.getcwd()]
    for entry in (pythonpath or "").split(","):
        if entry.strip():
            path = os.path.abspath(entry.strip())
            if not os.path.isdir(path):
                raise CliError(f"--pythonpath {pythonpath}: {entry.strip()!r} is not a directory")
            front.append(path)
    for path in reversed(front[1:] + front[:1]):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
