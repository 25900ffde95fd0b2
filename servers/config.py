"""Server configuration: httpd directives by their Apache names.

One job: turn compiled-in defaults, an optional YAML file and command-line
overrides into one frozen :class:`ServerConfig` for the chosen MPM, the way
httpd 2.4 turns ``httpd.conf`` into its effective settings:

* directive names are matched case-insensitively, as httpd's command table
  is, and the legacy names ``MaxClients`` and ``MaxRequestsPerChild`` are
  accepted with httpd's deprecation notices (AH00188/AH00324/AH00521,
  AH00545);
* the compiled-in defaults are httpd 2.4's (``mpm_default.h`` of each MPM,
  core, and mod_reqtimeout), see docs/mpm-model.md §6;
* the limit arithmetic of each MPM's ``check_config`` hook and the silent
  adjustments of its ``run`` hook are applied, and every change is recorded
  in :attr:`ServerConfig.notes` worded like httpd's startup warnings
  (prefork AH00175/AH00180, worker AH00300-AH00318, event AH00497-AH00515),
  see docs/mpm-model.md §5 "Limit arithmetic at config check";
* a per-MPM section (``prefork:``, ``worker:``, ``event:``) plays the role of
  ``<IfModule mpm_event_module>``.

Where this module is stricter than httpd (httpd clamps a zero
``StartServers`` to 1, this module refuses it) the error message and
docs/config.md say so. Nothing here opens sockets or reads anything but
the YAML file.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from dataclasses import KW_ONLY, dataclass, replace
from typing import Any, Callable, Iterable, Mapping

import yaml

from .http.access import Require, RequireError
from .http.logformat import PREDEFINED, LogFormatError, compile_format
from .mpm.spec import MPM_NAMES
from .mpm.spec import MPMS as MPM_SPECS
from .mpm.spec import MPMSpec

__all__ = [
    "MPMS",
    "DIRECTIVES",
    "NOT_IMPLEMENTED",
    "ConfigError",
    "Directive",
    "LogTarget",
    "PerMPM",
    "ReadTimeout",
    "RequestReadTimeout",
    "ServerConfig",
    "conf_quoted",
    "default_config",
    "directive_sources",
    "format_config",
    "is_async",
    "is_threaded",
    "load_config",
    "parse_override",
]

MPMS = MPM_NAMES  # declared once, in servers.mpm.spec
# Which MPMs have a directive follows from the kind of MPM each one is.
_THREADED = tuple(name for name, spec in MPM_SPECS.items() if spec.threaded)
_UNTHREADED = tuple(name for name, spec in MPM_SPECS.items() if not spec.threaded)
_ASYNC = tuple(name for name, spec in MPM_SPECS.items() if spec.asynchronous)

_LOG_LEVELS = ("emerg", "alert", "crit", "error", "warn", "notice", "info", "debug")
_DEFAULTS_LABEL = "<defaults>"
_OVERRIDES_LABEL = "<overrides>"
#: the source :func:`directive_sources` names for the overrides (the command line's --set)
OVERRIDES = _OVERRIDES_LABEL


class ConfigError(ValueError):
    """A configuration httpd would refuse to start with (or that we refuse).

    The message always starts with the file it came from (the YAML path as
    given, ``<overrides>`` for command-line ``--set`` values, ``<defaults>``
    when neither applies) and names the directive, like httpd's
    ``Syntax error on line N of FILE: ...``.
    """

    def __init__(self, message: str, *, source: str, key: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.key = key


# --------------------------------------------------------------------------
# Value types


@dataclass(frozen=True)
class ReadTimeout:
    """One stage of mod_reqtimeout's ``RequestReadTimeout``.

    ``timeout`` seconds are allowed for the stage (0 = stage disabled). With
    ``min_rate`` > 0 every ``min_rate`` bytes received extend the deadline by
    one second, up to ``max_timeout`` seconds in total (0 = no maximum, as in
    mod_reqtimeout). With ``min_rate`` 0 the timeout is fixed.
    """

    timeout: float
    max_timeout: float
    min_rate: int

    @property
    def enabled(self) -> bool:
        """mod_reqtimeout only arms a stage whose timeout is > 0."""
        return self.timeout > 0

    def __str__(self) -> str:
        # httpd's own syntax: timeout[-maxtimeout][,MinRate=rate]
        if not self.timeout:
            return "0"
        text = _fmt_number(self.timeout)
        if self.max_timeout:
            text += "-" + _fmt_number(self.max_timeout)
        if self.min_rate:
            text += f",MinRate={self.min_rate}"
        return text


_DISABLED = ReadTimeout(0.0, 0.0, 0)
_STAGES = ("handshake", "header", "body")


@dataclass(frozen=True)
class RequestReadTimeout:
    """mod_reqtimeout's three stages (handshake only matters for TLS)."""

    handshake: ReadTimeout
    header: ReadTimeout
    body: ReadTimeout

    def __str__(self) -> str:
        return " ".join(f"{stage}={getattr(self, stage)}" for stage in _STAGES)


# mod_reqtimeout's compiled-in default (httpd >= 2.4.39):
#   handshake=0 header=20-40,MinRate=500 body=20,MinRate=500
_DEFAULT_RRT = RequestReadTimeout(
    handshake=_DISABLED,
    header=ReadTimeout(20.0, 40.0, 500),
    body=ReadTimeout(20.0, 0.0, 500),
)


@dataclass(frozen=True)
class AcceptFilter:
    """httpd's ``AcceptFilter protocol filter`` settings, one filter per protocol.

    On Linux any filter but ``none`` sets TCP_DEFER_ACCEPT on the protocol's
    listeners (httpd's listen.c, with a 30 s defer period): the kernel hands a
    connection to accept() only once its first data arrived, so a client that
    connects and never sends a byte holds no process or thread. httpd's Linux
    default is ``data`` for both ``http`` and ``https``. Our listeners speak
    ``http`` (plain HTTP/1.1; httpd's default protocol for any port but 443).
    """

    filters: tuple[tuple[str, str], ...]

    def filter_for(self, protocol: str) -> str:
        """The filter set for ``protocol`` (httpd: ``none`` when none is configured)."""
        return dict(self.filters).get(protocol, "none")

    def defers(self, protocol: str = "http") -> bool:
        """True when listeners of ``protocol`` get TCP_DEFER_ACCEPT (any filter but ``none``)."""
        return self.filter_for(protocol) != "none"

    def lines(self) -> list[str]:
        """The settings as httpd.conf values: ``http data``, one per protocol."""
        return [f"{proto} {name}" for proto, name in self.filters]

    def __str__(self) -> str:
        return ", ".join(self.lines())


#: httpd 2.4's default on Linux (core.c: "data" for http and https where TCP_DEFER_ACCEPT exists)
_DEFAULT_ACCEPT_FILTER = AcceptFilter((("http", "data"), ("https", "data")))

#: CustomLog's name for the server's standard error (httpd.conf spells it /dev/stderr)
STDERR = "stderr"


@dataclass(frozen=True)
class LogTarget:
    """One ``CustomLog file format-or-nickname`` of mod_log_config.

    ``path`` is a file (relative to the working directory) or ``stderr``; ``format_arg`` the
    format or the LogFormat nickname as given; ``format`` the format string itself, the
    nickname resolved once every LogFormat is read (as mod_log_config resolves it when it
    opens its logs, so the order of the directives does not matter).
    """

    path: str
    format_arg: str
    format: str = ""


@dataclass(frozen=True)
class ServerConfig:
    """The effective settings of one server, attribute names = httpd directives.

    One field per entry of the directive table, in its order (a test checks it);
    the fields are written out, rather than generated from the table, so type
    checkers and readers see them.

    Directives that do not apply to the MPM hold neutral values: prefork has
    ThreadsPerChild = ThreadLimit = 1 and Min/MaxSpareThreads = 0; worker and
    event have Min/MaxSpareServers = 0. AsyncRequestWorkerFactor is only used
    by event. Durations are float seconds.
    """

    mpm: str
    Listen: tuple[tuple[str, int], ...]
    StartServers: int
    MinSpareServers: int
    MaxSpareServers: int
    MinSpareThreads: int
    MaxSpareThreads: int
    ThreadsPerChild: int
    ThreadLimit: int
    MaxRequestWorkers: int
    ServerLimit: int
    MaxConnectionsPerChild: int
    AsyncRequestWorkerFactor: float
    KeepAlive: bool
    KeepAliveTimeout: float
    MaxKeepAliveRequests: int
    Timeout: float
    RequestReadTimeout: RequestReadTimeout
    ListenBacklog: int
    AcceptFilter: AcceptFilter
    LimitRequestLine: int
    LimitRequestFieldSize: int
    LimitRequestFields: int
    LimitRequestBody: int
    GracefulShutdownTimeout: float
    PidFile: str | None
    ErrorLog: str | None
    LogFormat: tuple[tuple[str, str], ...]
    CustomLog: tuple[LogTarget, ...] | None
    ServerName: str | None
    LogLevel: str
    ExtendedStatus: bool
    StatusLocation: str | None
    StatusRequire: Require
    MaintenanceInterval: float
    BenchCPUWorkMicroseconds: int
    BenchBallastMiB: float
    source: str | None
    notes: tuple[str, ...]

    @property
    def daemons_limit(self) -> int:
        """httpd's ``ap_daemons_limit``: most child processes serving at once.

        prefork: MaxRequestWorkers; worker/event: MaxRequestWorkers /
        ThreadsPerChild (prefork's ThreadsPerChild is 1, so one formula serves
        both; exact after the clamps in :func:`load_config`, and bounded by
        ServerLimit for a configuration changed since).
        """
        return max(1, min(self.ServerLimit, self.MaxRequestWorkers // self.ThreadsPerChild))

    @property
    def min_spare(self) -> int:
        """Idle-unit floor for maintenance: MinSpareServers (prefork) or MinSpareThreads."""
        return MPM_SPECS[self.mpm].spare_limits(self)[0]

    @property
    def max_spare(self) -> int:
        """Idle-unit ceiling for maintenance: MaxSpareServers (prefork) or MaxSpareThreads."""
        return MPM_SPECS[self.mpm].spare_limits(self)[1]


# --------------------------------------------------------------------------
# MPM queries


def is_threaded(mpm: str) -> bool:
    """httpd's ``ap_mpm_query(AP_MPMQ_IS_THREADED)``: prefork is not, worker and event are."""
    return MPM_SPECS[_check_mpm(mpm, _DEFAULTS_LABEL)].threaded


def is_async(mpm: str) -> bool:
    """httpd's ``ap_mpm_query(AP_MPMQ_IS_ASYNC)``: only event is asynchronous."""
    return MPM_SPECS[_check_mpm(mpm, _DEFAULTS_LABEL)].asynchronous


def _check_mpm(mpm: object, source: str) -> str:
    if isinstance(mpm, str) and mpm.lower() in MPMS:
        return mpm.lower()
    raise ConfigError(
        f"{source}: mpm: unknown MPM {mpm!r} (choose one of {', '.join(MPMS)})",
        source=source, key="mpm",
    )


# --------------------------------------------------------------------------
# Value parsers. Each takes the raw YAML value and returns the typed value or
# raises _BadValue with the reason; the caller adds the file and the key.


class _BadValue(Exception):
    pass


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    return repr(value) if isinstance(value, str) else str(value)


def _fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _int_parser(minimum: int, maximum: int | None = None, why: str = "") -> Callable[[object], int]:
    def parse(value: object) -> int:
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value))
        ):
            raise _BadValue(f"expected an integer, got {_describe(value)}")
        number = int(value)  # type: ignore[arg-type]
        if number < minimum:
            raise _BadValue(f"must be at least {minimum}, got {number}{why}")
        if maximum is not None and number > maximum:
            raise _BadValue(f"must be at most {maximum}, got {number}")
        return number

    return parse


_DURATION_RE = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(ms|s)?\s*", re.IGNORECASE)


def _duration_parser(positive: bool) -> Callable[[object], float]:
    """Seconds as a number, or httpd's ap_timeout_parameter_parse() syntax ("500ms", "2s")."""

    def parse(value: object) -> float:
        seconds: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str):
            match = _DURATION_RE.fullmatch(value)
            if match:
                seconds = float(match.group(1))
                if (match.group(2) or "s").lower() == "ms":
                    seconds /= 1000.0
        if seconds is None or not math.isfinite(seconds):
            raise _BadValue(f"expected a duration in seconds, got {_describe(value)}")
        if seconds < 0:
            raise _BadValue(f"must not be negative, got {_describe(value)}")
        if positive and seconds == 0:
            raise _BadValue(f"must be greater than 0, got {_describe(value)}")
        return seconds

    return parse


def _parse_on_off(value: object) -> bool:
    # YAML 1.1 already turns unquoted On/Off/true/false into booleans.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("on", "true"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("off", "false"):
        return False
    raise _BadValue(f"expected On or Off, got {_describe(value)}")


def _finite_number(value: object, what: str) -> float:
    """A YAML number or a numeric string (strtod's reading), finite; else _BadValue naming ``what``."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise _BadValue(f"expected {what}, got {_describe(value)}")
    return number


def _parse_factor(value: object) -> float:
    # event's set_worker_factor(): strtod, then "must be a positive number".
    number = _finite_number(value, "a number")
    if number <= 0:
        raise _BadValue(f"AsyncRequestWorkerFactor argument must be a positive number, got {_describe(value)}")
    return number


def _mib_parser(value: object) -> float:
    """A non-negative number of MiB (fractions allowed), at most 65536."""
    number = _finite_number(value, "a number of MiB")
    if number < 0 or number > 65536:
        raise _BadValue(f"must be between 0 and 65536 MiB, got {_describe(value)}")
    return number


def _parse_log_level(value: object) -> str:
    if isinstance(value, str) and value.strip().lower() in _LOG_LEVELS:
        return value.strip().lower()
    raise _BadValue(f"expected one of {', '.join(_LOG_LEVELS)}, got {_describe(value)}")


def _parse_status_location(value: object) -> str | None:
    """The URL path where the server answers mod_status (``<Location PATH> SetHandler
    server-status``), or Off (YAML's unquoted Off is already False)."""
    if value is False:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("off", "none"):
            return None
        if text.startswith("/") and not re.search(r"[\s?#%]", text):
            return text
    raise _BadValue(f"expected a URL path starting with '/' (no query, no %-escapes) or Off, got {_describe(value)}")


def _parse_require(value: object) -> Require:
    """httpd's ``Require`` for the status page: local, all granted, all denied, ip A B ... (';' between)."""
    if not isinstance(value, str):
        raise _BadValue(f"expected a Require rule such as 'local' or 'ip 10.0.0.0/8', got {_describe(value)}")
    try:
        return Require.parse(value)
    except RequireError as exc:
        raise _BadValue(str(exc)) from None


def _parse_optional_str(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return value.strip()
    raise _BadValue(f"expected a string, got {_describe(value)}")


def _parse_port(text: str, original: object) -> int:
    if not re.fullmatch(r"\d{1,5}", text) or int(text) > 65535:
        raise _BadValue(f"expected a port number 0-65535, got {_describe(original)}")
    return int(text)


def _parse_address(value: object) -> tuple[str, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return "127.0.0.1", _parse_port(str(value), value)
    if not isinstance(value, str):
        raise _BadValue(f"expected 'host:port', '[v6addr]:port' or a port, got {_describe(value)}")
    text = value.strip()
    if re.fullmatch(r"\d+", text):  # "8080": port only, loopback as for an int
        return "127.0.0.1", _parse_port(text, value)
    if text.startswith("["):
        match = re.fullmatch(r"\[([^\]]+)\]:(\S+)", text)
        if not match:
            raise _BadValue(f"expected '[v6addr]:port', got {_describe(value)}")
        host, port_text = match.groups()
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _BadValue(f"{host!r} is not an IPv6 address in {_describe(value)}") from None
        return host, _parse_port(port_text, value)
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise _BadValue(f"expected 'host:port', '[v6addr]:port' or a port, got {_describe(value)}")
    if ":" in host:
        raise _BadValue(f"IPv6 addresses need brackets, e.g. '[::1]:8080', got {_describe(value)}")
    if host == "*":  # httpd's "all addresses"
        host = "0.0.0.0"
    return host, _parse_port(port_text, value)


def _parse_listen(value: object) -> tuple[tuple[str, int], ...]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise _BadValue("at least one address is required (httpd: no listening sockets available)")
    addresses: list[tuple[str, int]] = []
    for item in items:
        address = _parse_address(item)
        # httpd refuses to bind the same address twice; port 0 asks for a new
        # free port each time, so repeating it is meaningful.
        if address[1] != 0 and address in addresses:
            raise _BadValue(f"{_fmt_address(address)} is given more than once")
        addresses.append(address)
    return tuple(addresses)


def _fmt_address(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_seconds_field(text: str) -> float:
    # mod_reqtimeout takes whole seconds; we also take decimals so tests can
    # run with sub-second deadlines.
    if not re.fullmatch(r"\s*(\d+(\.\d*)?|\.\d+)\s*", text):
        raise _BadValue(f"Value '{text}' not numerical (expected non-negative seconds)")
    return float(text)


def _make_stage(stage: str, spec: str, timeout: float, max_timeout: float, rate: int) -> ReadTimeout:
    if max_timeout and timeout >= max_timeout:
        where = f"{stage}={spec}" if spec else stage
        raise _BadValue(f"{where}: Maximum timeout must be larger than initial timeout")
    if timeout == 0:
        # mod_reqtimeout never arms a stage whose initial timeout is 0.
        return _DISABLED
    return ReadTimeout(timeout, max_timeout, rate)


def _parse_stage_text(stage: str, text: str) -> ReadTimeout:
    """mod_reqtimeout's set_reqtimeout_param(): ``timeout[-maxtimeout][,MinRate=rate]``."""

    def fail(reason: str) -> _BadValue:
        return _BadValue(f"{stage}={text}: {reason}")

    cut = text.lower().find(",minrate=")
    rate = 0
    if cut >= 0:
        times, rate_text = text[:cut], text[cut + len(",minrate="):]
        if not re.fullmatch(r"\s*\d+\s*", rate_text):
            raise fail(f"Value '{rate_text}' not numerical")
        rate = int(rate_text)
        if rate == 0:
            raise fail("Minimum data rate must be larger than 0")
    else:
        times = text
        if "-" in times:
            raise fail("Must set MinRate option if using timeout range")
    initial_text, _, max_text = times.partition("-")
    try:
        timeout = _parse_seconds_field(initial_text)
        max_timeout = _parse_seconds_field(max_text) if max_text else 0.0
    except _BadValue as exc:
        raise fail(str(exc)) from None
    return _make_stage(stage, text, timeout, max_timeout, rate)


def _parse_stage_value(stage: str, value: object) -> ReadTimeout:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0 or not math.isfinite(value):
            raise _BadValue(f"{stage}={value}: Value must be non-negative")
        return _parse_stage_text(stage, _fmt_number(value))
    if isinstance(value, str):
        return _parse_stage_text(stage, value.strip())
    if isinstance(value, Mapping):
        # Extension: {timeout: 20, max_timeout: 40, min_rate: 500}
        fields = {str(k).lower(): v for k, v in _pairs(value)}
        unknown = set(fields) - {"timeout", "max_timeout", "min_rate"}
        if unknown:
            raise _BadValue(f"{stage}: unknown field(s) {', '.join(sorted(unknown))} "
                            "(expected timeout, max_timeout, min_rate)")
        try:
            timeout = _duration_parser(False)(fields.get("timeout", 0))
            max_timeout = _duration_parser(False)(fields.get("max_timeout", 0))
            rate = _int_parser(0)(fields.get("min_rate", 0))
        except _BadValue as exc:
            raise _BadValue(f"{stage}: {exc}") from None
        if max_timeout and not rate:
            raise _BadValue(f"{stage}: Must set MinRate option if using timeout range")
        return _make_stage(stage, "", timeout, max_timeout, rate)
    raise _BadValue(f"{stage}: expected 'timeout[-maxtimeout][,MinRate=rate]', "
                    f"got {_describe(value)}")


_FILTER_TOKEN = re.compile(r"[a-z0-9][a-z0-9_.+-]*\Z")


def _parse_accept_filter(value: object) -> dict[str, str]:
    """``AcceptFilter``: ``"http data"``, a list of such strings, or a mapping ``{http: data}``.

    Returns {protocol: filter}; several settings accumulate per protocol, as httpd's
    one-directive-per-protocol lines do (see :class:`AcceptFilter`).
    """
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        items = value if isinstance(value, (list, tuple)) else [value]
        pairs = []
        for item in items:
            if not isinstance(item, str) or len(item.split()) != 2:
                raise _BadValue(f"expected 'PROTOCOL FILTER' (e.g. 'http data' or 'http none'), got "
                                f"{_describe(item)}")
            proto, name = item.split()
            pairs.append((proto, name))
    out: dict[str, str] = {}
    for proto, name in pairs:
        proto, name = proto.strip().lower(), name.strip().lower()
        for what, text in (("protocol", proto), ("filter", name)):
            if not _FILTER_TOKEN.match(text):
                raise _BadValue(f"{what} {text!r} is not a name (e.g. 'http data', 'http none')")
        out[proto] = name
    if not out:
        raise _BadValue("expected at least one 'PROTOCOL FILTER' setting")
    return out


def _parse_request_read_timeout(value: object) -> dict[str, ReadTimeout]:
    """Only the stages given; the others keep their values (as httpd merges)."""
    stages: dict[str, ReadTimeout] = {}
    if isinstance(value, str):
        words = value.split()
        if not words:
            raise _BadValue("no stage given (expected e.g. 'header=20-40,MinRate=500')")
        for word in words:
            key, sep, spec = word.partition("=")
            if not sep:
                raise _BadValue("Invalid RequestReadTimeout parameter. Parameter must be in the form 'key=value', "
                                f"got {word!r}")
            stage = key.lower()
            if stage not in _STAGES:
                raise _BadValue(f"{word}: Unknown RequestReadTimeout parameter {key!r} "
                                f"(expected {', '.join(_STAGES)})")
            stages[stage] = _parse_stage_text(stage, spec)
        return stages
    if isinstance(value, Mapping):
        for key, spec in _pairs(value):
            stage = str(key).lower()
            if stage not in _STAGES:
                raise _BadValue(f"Unknown RequestReadTimeout parameter {key!r} (expected {', '.join(_STAGES)})")
            stages[stage] = _parse_stage_value(stage, spec)
        return stages
    raise _BadValue("expected httpd's syntax, e.g. 'header=20-40,MinRate=500 body=20,MinRate=500', "
                    f"or a mapping of stages, got {_describe(value)}")


# -- mod_log_config: LogFormat and CustomLog (docs/logging.md) --------------------------------


def _conf_words(text: str) -> list[str]:
    """httpd.conf's arguments (ap_getword_conf): words split on blanks; a word in "..." or '...' may hold
    blanks, and inside it a backslash before the quote or another backslash stands for that character."""
    words = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return words
        word, pos = _conf_word_at(text, pos)
        words.append(word)


def _conf_word_at(text: str, pos: int) -> tuple[str, int]:
    """The word of httpd.conf arguments starting at ``pos``, unescaped, and where the next one may start."""
    quote = text[pos] if text[pos] in "\"'" else ""
    special = "\\" + quote  # what a backslash escapes (httpd's substring_conf)
    out = []
    pos += len(quote)
    while pos < len(text) and (text[pos] != quote if quote else not text[pos].isspace()):
        if text[pos] == "\\" and pos + 1 < len(text) and text[pos + 1] in special:
            pos += 1
        out.append(text[pos])
        pos += 1
    if quote and pos == len(text):
        raise _BadValue(f"no closing {quote} in {text!r}")
    return "".join(out), pos + len(quote)


def conf_quoted(text: str) -> str:
    """``text`` as one quoted httpd.conf argument (what _conf_words reads back)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _conf_word(text: str) -> str:
    """``text`` as one httpd.conf argument: as it is when it is a plain word, else quoted."""
    return text if text and not re.search(r"[\s\"'\\]", text) else conf_quoted(text)


def _compiled(text: str) -> str:
    """A format string, checked as mod_log_config parses it; _BadValue with httpd's reason."""
    try:
        compile_format(text)
    except LogFormatError as exc:
        raise _BadValue(f"{exc} in {text!r}") from None
    return text


def _items(value: object, what: str) -> list[object]:
    """The settings a LogFormat or CustomLog value holds: one, or a list of them. A flow mapping given
    on the command line reaches us as its text (parse_override keeps what was typed), so it is read here."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise _BadValue(f"{value!r} is not a mapping of {what}") from None
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise _BadValue(f"expected at least one {what}")
    return items


def _parse_log_formats(value: object) -> tuple[tuple[str, str], ...]:
    """``LogFormat "format" nickname``: httpd's two arguments, a mapping ``{nickname: format}``, or a list."""
    formats: dict[str, str] = {}
    for item in _items(value, "'nickname: format'"):
        if isinstance(item, Mapping):
            pairs = list(_pairs(item))
        elif isinstance(item, str):
            words = _conf_words(item)
            if len(words) == 1:
                raise _BadValue("a LogFormat without a nickname sets TransferLog's format, and mpm-harness has no "
                                f"TransferLog: name it ('\"{words[0]}\" mine') and give the name to CustomLog")
            if len(words) != 2 or "%" in words[1]:
                raise _BadValue("LogFormat takes 1-2 arguments, a log format string (see docs) and an optional "
                                f"format name; quote the format, e.g. '\"%h %>s\" mine', got {item!r}")
            pairs = [(words[1], words[0])]
        else:
            raise _BadValue(f"expected '\"format\" nickname' or a mapping of nickname: format, got {_describe(item)}")
        for name, text in pairs:
            if not isinstance(name, str) or not name.strip() or re.search(r"[\s%]", name.strip()):
                raise _BadValue(f"nickname {name!r} must be one word without % (httpd's advice)")
            if not isinstance(text, str):
                raise _BadValue(f"{name}: expected a format string, got {_describe(text)}")
            formats[name.strip()] = _compiled(text)
    return tuple(formats.items())


def _log_target(path: object, fmt: object) -> LogTarget:
    if not isinstance(path, str) or not path.strip() or not isinstance(fmt, str) or not fmt:
        raise _BadValue(f"expected a file and a format or nickname, got {_describe(path)} {_describe(fmt)}")
    path = path.strip()
    if path.startswith("|"):
        raise _BadValue(f"{path!r}: piped logs are not implemented; log to a file and rotate it with "
                        "-k graceful (docs/logging.md), or to stderr")
    if path in (STDERR, "/dev/stderr"):
        path = STDERR
    # a word with a % is a format (nicknames have none); a nickname is resolved once all are read
    return LogTarget(path, fmt, _compiled(fmt) if "%" in fmt else "")


def _parse_custom_logs(value: object) -> tuple[LogTarget, ...] | None:
    """``CustomLog file format-or-nickname``: httpd's arguments, a mapping ``{file: format}`` or a list;
    Off (or an empty value) drops the CustomLogs set before it (ours: a way to turn logging off from --set)."""
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("", "off", "none")):
        return None
    targets: list[LogTarget] = []
    for item in _items(value, "'file: format'"):
        if isinstance(item, Mapping):
            targets += [_log_target(path, fmt) for path, fmt in _pairs(item)]
            continue
        if not isinstance(item, str):
            raise _BadValue(f"expected 'file format-or-nickname' or a mapping of file: format, got {_describe(item)}")
        words = _conf_words(item)
        if len(words) == 3 and words[2].lower().startswith(("env=", "expr=")):
            raise _BadValue(f"{words[2]!r}: conditional logging (env=, expr=) is not implemented")
        if len(words) != 2:
            raise _BadValue("CustomLog takes two or three arguments, a file name, a custom log format string or "
                            f"format name, and an optional \"env=\" or \"expr=\" clause; got {item!r}")
        targets.append(_log_target(*words))
    return tuple(targets)


def _resolve_custom_logs(values: dict[str, Any], settings: list[tuple[str, Any, str]]) -> None:
    """Give every CustomLog its format: a nickname is looked up among the LogFormats once all of them are
    read (mod_log_config's open_multi_logs). httpd would log a word that is no nickname as literal text;
    we refuse it, naming the file it came from."""
    if not values["CustomLog"]:
        return
    formats = dict(values["LogFormat"])
    sources = {id(t): source for name, given, source in settings if name == "CustomLog" and given for t in given}
    resolved = []
    for target in values["CustomLog"]:
        if not target.format:
            if target.format_arg not in formats:
                source = sources.get(id(target), _OVERRIDES_LABEL)
                close = difflib.get_close_matches(target.format_arg, list(formats), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"{source}: CustomLog: {target.format_arg!r} is neither a LogFormat nickname nor a "
                                  f"format (it has no % directive){hint}", source=source, key="CustomLog")
            target = replace(target, format=formats[target.format_arg])
        resolved.append(target)
    values["CustomLog"] = tuple(resolved)


# --------------------------------------------------------------------------
# Value writers: how format_config and httpd.conf spell a value. Each returns
# one text, or a list of texts for a directive written once per item.


def _texts(text: str | list[str]) -> list[str]:
    return [text] if isinstance(text, str) else list(text)


def _on_off(flag: bool) -> str:
    return "On" if flag else "Off"


def _fmt_duration(seconds: float) -> str:
    """Whole seconds, else exact milliseconds ("1500ms"), else the float; parse_override reads each back."""
    if float(seconds).is_integer():
        return str(int(seconds))
    millis = seconds * 1000.0
    return f"{round(millis)}ms" if abs(millis - round(millis)) < 1e-9 else repr(float(seconds))


def _fmt_listen(addresses: tuple[tuple[str, int], ...]) -> list[str]:
    return [_fmt_address(address) for address in addresses]


def _httpd_duration(seconds: float) -> str:
    """httpd's time syntax (ap_timeout_parameter_parse): whole seconds, else milliseconds."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{max(1, round(seconds * 1000))}ms"


def _httpd_whole_seconds(name: str, seconds: float) -> str:
    """httpd reads these as integers (GracefulShutdownTimeout, mod_reqtimeout's stages): refuse a fraction."""
    if not float(seconds).is_integer():
        raise ConfigError(f"{_OVERRIDES_LABEL}: {name} {seconds:g}: httpd takes whole seconds here",
                          source=_OVERRIDES_LABEL, key=name)
    return str(int(seconds))


def _httpd_graceful_timeout(seconds: float) -> str:
    return _httpd_whole_seconds("GracefulShutdownTimeout", seconds)


def _httpd_request_read_timeout(rrt: RequestReadTimeout) -> str:
    parts = []
    for stage in _STAGES:
        t = getattr(rrt, stage)
        if stage == "handshake" and not t.enabled:
            continue  # TLS only, and only httpd >= 2.4.39 knows the word
        for label, value in (("timeout", t.timeout), ("maximum", t.max_timeout)):
            _httpd_whole_seconds(f"RequestReadTimeout {stage} {label}", value)
        parts.append(f"{stage}={t}")
    return " ".join(parts)


def _httpd_factor(factor: float) -> str:
    return str(int(factor)) if float(factor).is_integer() else f"{factor:g}"


def _merge_stages(current: RequestReadTimeout, given: Mapping[str, ReadTimeout]) -> RequestReadTimeout:
    """mod_reqtimeout merges per stage: a later setting changes only the stages it names."""
    return RequestReadTimeout(**{stage: given.get(stage, getattr(current, stage)) for stage in _STAGES})


def _merge_filters(current: AcceptFilter, given: Mapping[str, str]) -> AcceptFilter:
    """One AcceptFilter line per protocol, as in httpd: later settings win per protocol."""
    return AcceptFilter(tuple({**dict(current.filters), **given}.items()))


def _merge_log_formats(current: tuple[tuple[str, str], ...], given: tuple[tuple[str, str], ...]
                       ) -> tuple[tuple[str, str], ...]:
    """LogFormat accumulates nicknames; a nickname defined again takes the new format (apr_table_setn)."""
    return tuple({**dict(current), **dict(given)}.items())


def _merge_custom_logs(current: tuple[LogTarget, ...] | None, given: tuple[LogTarget, ...] | None
                       ) -> tuple[LogTarget, ...] | None:
    """Every CustomLog adds a log, as httpd's lines do; Off (None) drops those set before it."""
    return None if given is None else (current or ()) + given


def _fmt_log_formats(formats: tuple[tuple[str, str], ...]) -> list[str]:
    """The nicknames defined or redefined by the configuration (the predefined ones go without saying)."""
    return [f"{_conf_word(text)} {name}" for name, text in formats if PREDEFINED.get(name) != text]


def _httpd_log_formats(formats: tuple[tuple[str, str], ...]) -> list[str]:
    """Every nickname, the predefined ones included: httpd itself only knows CLF."""
    return [f"{conf_quoted(text)} {name}" for name, text in formats]


def _fmt_custom_logs(targets: tuple[LogTarget, ...] | None) -> list[str]:
    return [f"{_conf_word(t.path)} {_conf_word(t.format_arg)}" for t in targets or ()]


def _httpd_custom_logs(targets: tuple[LogTarget, ...] | None) -> list[str]:
    """httpd resolves a relative path against ServerRoot, we against the working directory: give it the
    absolute path; and our ``stderr`` is its /dev/stderr."""
    return [f"{_conf_word('/dev/stderr' if t.path == STDERR else os.path.abspath(t.path))} "
            f"{_conf_word(t.format_arg)}" for t in targets or ()]


def _bench_on(cfg: ServerConfig) -> bool:
    # the testing knobs are printed only when on, so a run with an injected regression always says so
    return bool(cfg.BenchCPUWorkMicroseconds or cfg.BenchBallastMiB)


# --------------------------------------------------------------------------
# The directive table: declared once, used for validation, canonical names,
# suggestions, defaults, format_config, the httpd.conf of servers.external
# and the docs.


class PerMPM(dict):
    """A default that differs between the MPMs a directive belongs to: ``PerMPM(prefork=5, worker=3, event=3)``."""


@dataclass(frozen=True)
class Directive:
    """One supported directive and everything the loader and the writers need to know about it.

    ``default`` is httpd 2.4's compiled-in value (each MPM's mpm_default.h, core,
    mod_reqtimeout; docs/mpm-model.md §6), a :class:`PerMPM` where the MPMs differ;
    MPMs outside ``mpms`` hold ``neutral``. ``show`` writes the value for
    :func:`format_config`; ``httpd_show`` for httpd.conf where httpd spells it
    differently, and ``httpd`` is False for mpm-harness knobs httpd does not have.
    A directive with ``merge`` accumulates its settings (mod_reqtimeout's stages,
    AcceptFilter's protocols) instead of the last one winning. format_config writes
    ``comment`` before the value, ``# NAME not set (unset)`` for a None value, and
    nothing when ``shown`` says no.
    """

    name: str
    mpms: tuple[str, ...]
    summary: str
    parse: Callable[[object], Any]
    _: KW_ONLY
    default: Any
    neutral: Any = None
    show: Callable[[Any], str | list[str]] = str
    httpd: bool = True
    httpd_show: Callable[[Any], str | list[str]] | None = None
    merge: Callable[[Any, Any], Any] | None = None
    unset: str | None = None
    comment: str | None = None
    shown: Callable[[ServerConfig], bool] | None = None

    def default_for(self, mpm: str) -> Any:
        """The compiled-in value for ``mpm``; the neutral value where the MPM has no such directive."""
        if mpm not in self.mpms:
            return self.neutral
        return self.default[mpm] if isinstance(self.default, PerMPM) else self.default

    def conf_lines(self, cfg: ServerConfig) -> list[str]:
        """format_config's lines for this directive of ``cfg`` (none when it does not apply)."""
        if cfg.mpm not in self.mpms or (self.shown is not None and not self.shown(cfg)):
            return []
        value = getattr(cfg, self.name)
        lines = [f"# {self.comment}"] if self.comment else []
        if value is None and self.unset is not None:
            return [*lines, f"# {self.name} not set ({self.unset})"]
        return [*lines, *(f"{self.name} {text}" for text in _texts(self.show(value)))]

    def httpd_values(self, value: Any) -> list[str]:
        """``value`` as httpd.conf spells it, one text per line; ConfigError where httpd's syntax cannot hold it."""
        if not self.httpd:
            raise ValueError(f"{self.name} is an mpm-harness knob, not an httpd directive")
        return _texts((self.httpd_show or self.show)(value))


_AT_LEAST_1 = " (httpd would warn and use 1; mpm-harness refuses it)"

# In format_config's order; ServerConfig's fields follow it.
_DIRECTIVE_LIST = (
    Directive("Listen", MPMS, "addresses to listen on: 'host:port', '[v6]:port' or a port (127.0.0.1)",
              _parse_listen, default=(("127.0.0.1", 8080),), show=_fmt_listen),
    Directive("StartServers", MPMS, "child processes forked at startup", _int_parser(1, why=_AT_LEAST_1),
              default=PerMPM(prefork=5, worker=3, event=3)),
    Directive("MinSpareServers", _UNTHREADED, "fewest idle child processes before more are forked",
              _int_parser(1, why=_AT_LEAST_1), default=5, neutral=0),
    Directive("MaxSpareServers", _UNTHREADED, "most idle child processes before one is retired", _int_parser(0),
              default=10, neutral=0),
    # worker/event: 3 x 25 spare floor, 10 x 25 ceiling, 16 x 25 workers
    Directive("MinSpareThreads", _THREADED, "fewest idle worker threads, server-wide, before a child is forked",
              _int_parser(1, why=_AT_LEAST_1), default=75, neutral=0),
    Directive("MaxSpareThreads", _THREADED, "most idle worker threads, server-wide, before a child is retired",
              _int_parser(0), default=250, neutral=0),
    Directive("ThreadsPerChild", _THREADED, "worker threads in each child process", _int_parser(1, why=_AT_LEAST_1),
              default=25, neutral=1),
    Directive("ThreadLimit", _THREADED, "upper bound of ThreadsPerChild for the server's lifetime",
              _int_parser(1, why=_AT_LEAST_1), default=64, neutral=1),
    # prefork's pre_config sets MaxRequestWorkers = ServerLimit = 256
    Directive("MaxRequestWorkers", MPMS, "most connections served at once (prefork: processes; else threads)",
              _int_parser(1, why=_AT_LEAST_1), default=PerMPM(prefork=256, worker=400, event=400)),
    Directive("ServerLimit", MPMS, "most child processes for the server's lifetime (sizes the scoreboard)",
              _int_parser(1, why=_AT_LEAST_1), default=PerMPM(prefork=256, worker=16, event=16)),
    Directive("MaxConnectionsPerChild", MPMS, "connections a child serves before it exits (0 = never)",
              _int_parser(0), default=0),
    Directive("AsyncRequestWorkerFactor", _ASYNC, "extra connections accepted per idle worker thread",
              _parse_factor, default=2.0, neutral=2.0, show=_fmt_number, httpd_show=_httpd_factor),
    Directive("KeepAlive", MPMS, "allow persistent connections (On/Off)", _parse_on_off, default=True,
              show=_on_off),
    Directive("KeepAliveTimeout", MPMS, "seconds to wait for the next request on a persistent connection",
              _duration_parser(False), default=5.0, show=_fmt_duration, httpd_show=_httpd_duration),
    Directive("MaxKeepAliveRequests", MPMS, "requests per persistent connection (0 = unlimited)", _int_parser(0),
              default=100),
    Directive("Timeout", MPMS, "seconds to wait for each read or write", _duration_parser(True), default=60.0,
              show=_fmt_duration, httpd_show=_httpd_duration),
    Directive("RequestReadTimeout", MPMS, "mod_reqtimeout: deadlines and minimum rates for reading a request",
              _parse_request_read_timeout, default=_DEFAULT_RRT, merge=_merge_stages,
              httpd_show=_httpd_request_read_timeout),
    Directive("ListenBacklog", MPMS, "listen() backlog (the kernel caps it at somaxconn)", _int_parser(1),
              default=511),
    Directive("AcceptFilter", MPMS, "'PROTOCOL FILTER': any filter but 'none' defers accept until data arrives "
              "(Linux TCP_DEFER_ACCEPT)", _parse_accept_filter, default=_DEFAULT_ACCEPT_FILTER,
              show=AcceptFilter.lines, merge=_merge_filters),
    Directive("LimitRequestLine", MPMS, "bytes allowed in the request line", _int_parser(1), default=8190),
    Directive("LimitRequestFieldSize", MPMS, "bytes allowed in one request header field", _int_parser(1),
              default=8190),
    Directive("LimitRequestFields", MPMS, "request header fields allowed (0 = unlimited)", _int_parser(0),
              default=100),
    # httpd >= 2.4.54's compiled-in default is 1 GiB (it was 0, unlimited, before)
    Directive("LimitRequestBody", MPMS, "bytes allowed in a request body (0 = unlimited; default 1 GiB)",
              _int_parser(0, maximum=2147483647), default=1073741824),
    Directive("GracefulShutdownTimeout", MPMS, "seconds graceful-stop waits before killing children (0 = forever)",
              _duration_parser(False), default=0.0, show=_fmt_duration, httpd_show=_httpd_graceful_timeout),
    Directive("PidFile", MPMS, "file the parent writes its PID to (unset = none)", _parse_optional_str,
              default=None, unset="no pid file"),
    Directive("ErrorLog", MPMS, "error log file (unset = stderr)", _parse_optional_str, default=None,
              unset="stderr"),
    Directive("LogFormat", MPMS, "mod_log_config: '\"format\" nickname' (repeatable), named for CustomLog",
              _parse_log_formats, default=tuple(PREDEFINED.items()), show=_fmt_log_formats,
              httpd_show=_httpd_log_formats, merge=_merge_log_formats,
              comment="LogFormat nicknames predefined: " + " ".join(PREDEFINED)),
    Directive("CustomLog", MPMS, "mod_log_config: 'file format-or-nickname' (repeatable; file or stderr; "
              "Off = none)", _parse_custom_logs, default=None, show=_fmt_custom_logs,
              httpd_show=_httpd_custom_logs, merge=_merge_custom_logs, unset="no access log"),
    Directive("ServerName", MPMS, "host name the server uses for itself (unset = derived from the address)",
              _parse_optional_str, default=None, unset="derived"),
    Directive("LogLevel", MPMS, "error log verbosity: emerg alert crit error warn notice info debug",
              _parse_log_level, default="warn"),
    Directive("ExtendedStatus", MPMS, "mod_status: per-request details and totals in the status page and the "
              "scoreboard (On/Off)", _parse_on_off, default=True, show=_on_off),
    Directive("StatusLocation", MPMS, "mpm-harness knob: the path where the server itself answers mod_status, "
              "in front of any app (Off = none)", _parse_status_location, default="/server-status",
              show=lambda v: v or "Off", httpd=False,
              comment="StatusLocation and StatusRequire stand for httpd's <Location PATH> SetHandler "
                      "server-status, Require RULE </Location>"),
    Directive("StatusRequire", MPMS, "mpm-harness knob: who may read the status page: local, all granted, "
              "all denied, ip ADDRESS|NETWORK ... (';' between several)", _parse_require,
              default=Require.parse("local"), show=str, httpd=False),
    Directive("MaintenanceInterval", MPMS, "mpm-harness knob: seconds between parent maintenance ticks (httpd: 1)",
              _duration_parser(True), default=1.0, show=_fmt_duration, httpd=False,
              comment="MaintenanceInterval is an mpm-harness knob, not an httpd directive (httpd: fixed 1 s)"),
    Directive("BenchCPUWorkMicroseconds", MPMS, "mpm-harness testing knob: CPU microseconds burnt in every "
              "request (0 = off)", _int_parser(0, maximum=10_000_000), default=0, httpd=False, shown=_bench_on,
              comment="Bench* are mpm-harness testing knobs that inject a known regression (docs/gate.md)"),
    Directive("BenchBallastMiB", MPMS, "mpm-harness testing knob: MiB of memory each child process allocates "
              "and touches (0 = off)", _mib_parser, default=0.0, show=_fmt_number, httpd=False,
              shown=_bench_on),
)

#: Supported directives by canonical name (read-only use, e.g. for CLI help).
DIRECTIVES: Mapping[str, Directive] = {d.name: d for d in _DIRECTIVE_LIST}

# Legacy names: alias -> (canonical name, httpd's deprecation message)
_ALIASES = {
    "MaxClients": ("MaxRequestWorkers", "MaxClients is deprecated, use MaxRequestWorkers instead."),
    "MaxRequestsPerChild": ("MaxConnectionsPerChild",
                            "MaxRequestsPerChild is deprecated, use MaxConnectionsPerChild instead."),
}

#: Real httpd directives mpm-harness does not implement: accepted and ignored (with a
#: note) so an httpd-derived file loads; servers.external.apache passes them to httpd.
NOT_IMPLEMENTED = ("ListenCoresBucketsRatio", "MaxMemFree")

_BY_LOWER: dict[str, str] = {name.lower(): name for name in (*DIRECTIVES, *_ALIASES, *NOT_IMPLEMENTED)}


def _canonical(key: object, source: str) -> str:
    """The spelling from the table for a case-insensitive key, else a ConfigError with a suggestion."""
    if not isinstance(key, str):
        raise ConfigError(f"{source}: directive names must be strings, got {_describe(key)}", source=source,
                          key=str(key))
    name = _BY_LOWER.get(key.strip().lower())
    if name is not None:
        return name
    candidates = [*_BY_LOWER, *MPMS]
    close = difflib.get_close_matches(key.strip().lower(), candidates, n=1, cutoff=0.6)
    hint = ""
    if close:
        hint = f" (did you mean '{_BY_LOWER.get(close[0], close[0])}'?)"
    raise ConfigError(f"{source}: unknown directive '{key}'{hint}", source=source, key=key)


def _mpm_defaults(mpm: str) -> dict[str, Any]:
    """Compiled-in defaults of httpd 2.4 for ``mpm``, from the directive table (docs/mpm-model.md §6)."""
    return {d.name: d.default_for(mpm) for d in _DIRECTIVE_LIST}


# --------------------------------------------------------------------------
# YAML loading


class _YamlMapping(dict):
    """A YAML mapping that remembers every (key, value) pair in order, duplicates included."""

    pairs: tuple[tuple[Any, Any], ...] = ()


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _YamlMapping:
    loader.flatten_mapping(node)
    pairs = []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found an unhashable key", key_node.start_mark
            ) from None
        pairs.append((key, loader.construct_object(value_node, deep=True)))
    mapping = _YamlMapping(pairs)
    mapping.pairs = tuple(pairs)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _pairs(mapping: Mapping[Any, Any]) -> Iterable[tuple[Any, Any]]:
    return getattr(mapping, "pairs", None) or tuple(mapping.items())


def _read_yaml(path: str | os.PathLike[str]) -> tuple[Mapping[Any, Any], str]:
    label = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"{label}: no such configuration file", source=label) from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read: {exc.strerror or exc}", source=label) from None
    try:
        document = yaml.load(data, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{label}: invalid YAML{where}: {problem}", source=label) from None
    if document is None:  # an empty file is an empty configuration
        return {}, label
    if not isinstance(document, Mapping):
        raise ConfigError(
            f"{label}: expected a mapping of 'Directive: value' at the top level, got {type(document).__name__}",
            source=label,
        )
    return document, label


# --------------------------------------------------------------------------
# Collecting settings from one mapping


def _collect(
    mapping: Mapping[Any, Any], source: str, mpm: str, notes: list[str], section: str | None = None
) -> list[tuple[str, Any, str]]:
    """Parse one mapping into (directive, value, source) settings that apply to ``mpm``.

    Every key and value is validated even when it will not be applied (another
    MPM's directive at top level, another MPM's section), because one file
    usually serves the whole prefork/worker/event matrix.
    """
    applied: list[tuple[str, Any, str]] = []
    sections: list[tuple[str, Mapping[Any, Any]]] = []
    seen: dict[str, str] = {}
    where = f"{section}: " if section else ""
    for key, value in _pairs(mapping):
        if isinstance(key, str) and key.strip().lower() in MPMS:
            name = key.strip().lower()
            if section is not None:
                raise ConfigError(f"{source}: {where}{key}: per-MPM sections cannot be nested", source=source,
                                  key=key)
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: {key}: expected a mapping of 'Directive: value', got "
                                  f"{_describe(value)}", source=source, key=key)
            sections.append((name, value))
            continue
        name = _canonical(key, source)
        if name in NOT_IMPLEMENTED:
            if section in (None, mpm):
                notes.append(f"{source}: {where}{name} is not implemented by mpm-harness, ignored")
            continue
        target, alias_message = _ALIASES.get(name, (name, None))
        directive = DIRECTIVES[target]
        try:
            parsed = directive.parse(value)
        except _BadValue as exc:
            raise ConfigError(f"{source}: {where}{key}: {exc}", source=source, key=key) from None
        if section is not None and section not in directive.mpms:
            raise ConfigError(
                f"{source}: {target} is not a {section} directive "
                f"(in the '{section}:' section; it belongs to {'/'.join(directive.mpms)})",
                source=source, key=key,
            )
        if section is not None and section != mpm:
            continue  # validated only; this section is for another MPM
        if mpm not in directive.mpms:
            notes.append(f"{source}: {target} is not a {mpm} directive, ignored "
                         f"(it belongs to {'/'.join(directive.mpms)})")
            continue
        if alias_message:
            ah = MPM_SPECS[mpm].config_codes["maxclients"] if name == "MaxClients" else "00545"
            notes.append(f"{source}: AH{ah}: {alias_message}")
        if target in seen and directive.merge is None:
            notes.append(f"{source}: {where}{target} is set more than once ({seen[target]!r} and {key!r}); "
                         "the last value wins")
        seen[target] = str(key)
        applied.append((target, parsed, source))
    for name, body in sections:
        section_settings = _collect(body, source, mpm, notes, section=name)
        if name == mpm:
            applied.extend(section_settings)
    return applied


# --------------------------------------------------------------------------
# httpd's limit arithmetic


def _apply_limits(mpm: str, v: dict[str, Any], notes: list[str]) -> None:
    """Each MPM's check_config hook, then the adjustments its run hook makes (buckets = 1)."""
    spec = MPM_SPECS[mpm]
    hard = spec.hard_server_limit
    if v["ServerLimit"] > hard:
        notes.append(f"AH{spec.config_codes['server_limit']}: ServerLimit of {v['ServerLimit']} exceeds "
                     f"compile-time limit of {hard} servers, decreasing to {hard}.")
        v["ServerLimit"] = hard
    daemons_limit = (_threaded_limits if spec.threaded else _process_limits)(spec, v, notes)
    # *_run(): never start more children than may ever run (silent in httpd)
    if v["StartServers"] > daemons_limit:
        basis = "MaxRequestWorkers / ThreadsPerChild" if spec.threaded else "MaxRequestWorkers"
        notes.append(f"StartServers of {v['StartServers']} exceeds the limit of {daemons_limit} servers "
                     f"({basis}), decreasing to {daemons_limit} (httpd caps this silently).")
        v["StartServers"] = daemons_limit


def _process_limits(spec: MPMSpec, v: dict[str, Any], notes: list[str]) -> int:
    """prefork_check_config() and prefork_run(): one worker per process. Returns ap_daemons_limit."""
    if v["MaxRequestWorkers"] > v["ServerLimit"]:
        notes.append(f"AH{spec.config_codes['mrw_over_limit']}: MaxRequestWorkers of {v['MaxRequestWorkers']} "
                     f"exceeds ServerLimit value of {v['ServerLimit']} servers, decreasing MaxRequestWorkers to "
                     f"{v['ServerLimit']}. To increase, please see the ServerLimit directive.")
        v["MaxRequestWorkers"] = v["ServerLimit"]
    # prefork_run(): MaxSpareServers >= MinSpareServers + buckets (silent in httpd)
    if v["MaxSpareServers"] < v["MinSpareServers"] + 1:
        raised = v["MinSpareServers"] + 1
        notes.append(f"MaxSpareServers of {v['MaxSpareServers']} is less than MinSpareServers of "
                     f"{v['MinSpareServers']} + 1, increasing to {raised} (httpd adjusts this silently).")
        v["MaxSpareServers"] = raised
    return v["MaxRequestWorkers"]


def _threaded_limits(spec: MPMSpec, v: dict[str, Any], notes: list[str]) -> int:
    """worker/event_check_config() and *_run(): threads per process. Returns ap_daemons_limit."""
    ah = spec.config_codes
    thread_hard = spec.hard_thread_limit
    if v["ThreadLimit"] > thread_hard:
        notes.append(f"AH{ah['thread_limit']}: ThreadLimit of {v['ThreadLimit']} exceeds compile-time limit "
                     f"of {thread_hard} threads, decreasing to {thread_hard}.")
        v["ThreadLimit"] = thread_hard
    if v["ThreadsPerChild"] > v["ThreadLimit"]:
        notes.append(f"AH{ah['tpc_over_limit']}: ThreadsPerChild of {v['ThreadsPerChild']} exceeds "
                     f"ThreadLimit of {v['ThreadLimit']} threads, decreasing to {v['ThreadLimit']}. "
                     "To increase, please see the ThreadLimit directive.")
        v["ThreadsPerChild"] = v["ThreadLimit"]
    tpc = v["ThreadsPerChild"]
    if v["MaxRequestWorkers"] < tpc:
        notes.append(f"AH{ah['mrw_below_tpc']}: MaxRequestWorkers of {v['MaxRequestWorkers']} is less than "
                     f"ThreadsPerChild of {tpc}, increasing to {tpc}. MaxRequestWorkers must be at least "
                     "as large as the number of threads in a single server.")
        v["MaxRequestWorkers"] = tpc
    daemons_limit = v["MaxRequestWorkers"] // tpc
    if v["MaxRequestWorkers"] % tpc:
        rounded = daemons_limit * tpc
        notes.append(f"AH{ah['mrw_multiple']}: MaxRequestWorkers of {v['MaxRequestWorkers']} is not an "
                     f"integer multiple of ThreadsPerChild of {tpc}, decreasing to nearest multiple "
                     f"{rounded}, for a maximum of {daemons_limit} servers.")
        v["MaxRequestWorkers"] = rounded
    if daemons_limit > v["ServerLimit"]:
        capped = v["ServerLimit"] * tpc
        notes.append(f"AH{ah['mrw_over_limit']}: MaxRequestWorkers of {v['MaxRequestWorkers']} would "
                     f"require {daemons_limit} servers and would exceed ServerLimit of {v['ServerLimit']}, "
                     f"decreasing to {capped}. To increase, please see the ServerLimit directive.")
        v["MaxRequestWorkers"] = capped
        daemons_limit = v["ServerLimit"]
    # worker_run()/event_run(): MaxSpareThreads >= Min + (TPC + 1) * buckets (silent in httpd)
    floor = v["MinSpareThreads"] + tpc + 1
    if v["MaxSpareThreads"] < floor:
        notes.append(f"MaxSpareThreads of {v['MaxSpareThreads']} is less than MinSpareThreads of "
                     f"{v['MinSpareThreads']} + ThreadsPerChild of {tpc} + 1, increasing to {floor} "
                     "(httpd adjusts this silently).")
        v["MaxSpareThreads"] = floor
    return daemons_limit


# --------------------------------------------------------------------------
# Public entry points


def default_config(mpm: str) -> ServerConfig:
    """httpd 2.4's compiled-in defaults for ``mpm`` (prefork, worker or event), no file, no overrides."""
    return load_config(mpm)


def _settings(mpm: str, path, overrides, notes: list[str]) -> list[tuple[str, Any, str]]:
    """(directive, value, source) for ``mpm`` from the file, then ``overrides``, in reading order."""
    settings: list[tuple[str, Any, str]] = []
    if path is not None:
        document, label = _read_yaml(path)
        settings += _collect(document, label, mpm, notes)
    if overrides:
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"{_OVERRIDES_LABEL}: expected a mapping of directive to value",
                              source=_OVERRIDES_LABEL)
        settings += _collect(overrides, _OVERRIDES_LABEL, mpm, notes)
    return settings


def directive_sources(mpm: str, path: str | os.PathLike[str] | None = None,
                      overrides: Mapping[str, object] | None = None) -> dict[str, str]:
    """{directive: what sets it for ``mpm``}: the file's path, or OVERRIDES for ``overrides``
    (the later one where both do), read exactly as :func:`load_config` reads them."""
    mpm = _check_mpm(mpm, os.fspath(path) if path is not None else _DEFAULTS_LABEL)
    return {name: source for name, _value, source in _settings(mpm, path, overrides, [])}


def load_config(
    mpm: str,
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> ServerConfig:
    """Build the effective configuration the way httpd reads httpd.conf.

    Order: compiled-in defaults, then the file's top-level directives, then
    its section for ``mpm`` (like ``<IfModule mpm_event_module>``), then
    ``overrides`` (the CLI's ``--set``; it may also hold a per-MPM section).
    Later values win, except ``RequestReadTimeout``, whose stages accumulate as
    in mod_reqtimeout. Then each MPM's check_config clamps are applied.
    Raises :class:`ConfigError` naming the file and the key.
    """
    source_label = os.fspath(path) if path is not None else _DEFAULTS_LABEL
    mpm = _check_mpm(mpm, source_label)
    notes: list[str] = []
    settings = _settings(mpm, path, overrides, notes)

    values = _mpm_defaults(mpm)
    for name, value, _source in settings:
        merge = DIRECTIVES[name].merge
        values[name] = merge(values[name], value) if merge else value

    _resolve_custom_logs(values, settings)
    _apply_limits(mpm, values, notes)
    return ServerConfig(
        mpm=mpm,
        source=os.fspath(path) if path is not None else None,
        notes=tuple(notes),
        **values,
    )


def parse_override(text: str) -> tuple[str, object]:
    """Parse one CLI ``--set Directive=value`` (like ``httpd -C 'Directive value'``).

    The value is read as a YAML scalar ("2" -> 2, "Off" -> False, "500ms"
    stays a string); text YAML cannot read as a scalar (e.g. "[::1]:8080")
    is kept as the string given, and a flow list ("[8080, 8081]") stays a
    list for Listen. The name is matched case-insensitively and returned in
    its canonical spelling (legacy names are kept so load_config can note
    their deprecation). Unknown names raise ConfigError with a suggestion.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{_OVERRIDES_LABEL}: expected 'Directive=value', got {text!r}", source=_OVERRIDES_LABEL,
                          key=key.strip() or None)
    key = key.strip()
    name = key.lower() if key.lower() in MPMS else _canonical(key, _OVERRIDES_LABEL)
    try:
        value: object = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw.strip()
    if name in MPMS and isinstance(value, Mapping):
        return name, value  # "event={ThreadsPerChild: 5}": a per-MPM section
    if isinstance(value, Mapping) or (value is not None and not isinstance(value, (str, int, float, bool, list))):
        value = raw.strip()  # a scalar was meant; keep what was typed
    return name, value


def format_config(cfg: ServerConfig) -> str:
    """The effective values as httpd.conf-style ``Directive value`` lines.

    Like ``httpd -t -D DUMP_RUN_CFG`` plus the MPM settings httpd never
    prints: a comment header names the MPM and the source, every note is a
    comment, then one line per directive that applies to the MPM (one Listen
    line per address). Unset PidFile/ErrorLog/ServerName appear as comments.
    Each non-comment line can be fed back through :func:`parse_override`.
    """
    spec = MPM_SPECS[cfg.mpm]
    kind = "threaded, async" if spec.asynchronous else ("threaded" if spec.threaded else "not threaded")
    lines = [
        f"# mpm-harness effective configuration: {cfg.mpm} MPM ({kind})",
        f"# source: {cfg.source if cfg.source is not None else 'compiled-in defaults'}",
    ]
    lines += [f"# note: {note}" for note in cfg.notes]
    for directive in _DIRECTIVE_LIST:
        lines += directive.conf_lines(cfg)
    return "\n".join(lines) + "\n"
