"""Matrices: which servers, suites and load profiles a harness run covers, read from YAML.

A matrix is one YAML document (docs/harness.md has the full reference):

    description: what this matrix is for
    trials: 3            # measured trials per server and profile, interleaved A B C A B C
    warmup: 1            # seconds of load before each measured profile, discarded
    reference: event     # the server label the ratio columns divide by
    servers:             # a launcher name, or a mapping with a label and directives
      - prefork
      - {label: prefork50, server: prefork, set: {StartServers: 50, MaxRequestWorkers: 50}}
      - {label: staging, url: "https://staging.example:8443/app", pidfile: /run/apache2/apache2.pid}
    suites: [conformance, keepalive, slowclient, threadsafety]
    profiles:
      hello: {driver: loadgen, mode: closed, connections: 50, duration: 3}

Built-in matrices live in ``harness/matrices/*.yaml`` (``all``, ``quick``,
``ci``); :func:`load_matrix` takes one of those names or a path.  Every
error names the file and the key path (``profiles.hello.conections``), and
suggests the closest valid key, as the server config does.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from .drivers.access import Access
from .drivers.registry import DRIVERS as DRIVER_SPECS
from .drivers.registry import FEATURES

if TYPE_CHECKING:
    from servers.interpreters import Interpreter

__all__ = [
    "MatrixError", "Matrix", "ServerEntry", "Profile", "GateSpec", "SUITES", "DRIVERS", "GATE_DEFAULTS",
    "URL_SERVER", "ATTACK_NOT_RUN", "url_matrix", "check_interpreters", "probe_entry_python",
    "builtin_matrices", "load_matrix", "parse_matrix",
]

MATRIX_DIR = Path(__file__).with_name("matrices")

#: suite name -> pytest path (relative to the project root)
SUITES: dict[str, str] = {
    "smoke": "suites/test_smoke.py",
    "conformance": "suites/conformance",
    "keepalive": "suites/test_keepalive.py",
    "slowclient": "suites/test_slowclient.py",
    "threadsafety": "suites/test_threadsafety.py",
}

# Per driver: every profile key it accepts, with its type and default (None: required);
# declared once, with the driver, in harness/drivers/registry.py
DRIVERS: dict[str, dict[str, tuple]] = {name: d.schema for name, d in DRIVER_SPECS.items()}

_TOP = {
    "description": (str, ""),
    "trials": (int, 3),
    "warmup": ((int, float), 1.0),
    "reference": (str, ""),
    "servers": (list, None),
    "suites": (list, []),
    "profiles": (dict, {}),
    "quiet": (dict, {}),
    "pinning": (str, "auto"),
    "timeouts": (dict, {}),
    "suite_workers": (int, 2),
    "conformance_workers": (int, 0),  # 0: suite_workers; the raw-socket cases mostly wait, so more fit
    "peers": (dict, {}),
    "gate": (dict, {}),
    "scoreboard": (bool, True),
}
_QUIET = {"seconds": ((int, float), 0.5), "max_other_cpu_percent": ((int, float), 25.0)}
_TIMEOUTS = {"start": ((int, float), 60.0), "suite": ((int, float), 600.0), "profile_grace": ((int, float), 30.0)}
_GATE = {"thresholds": (dict, {}), "memory": (str, "pss"), "alpha": ((int, float), 0.05),
         "min_trials": (int, 3), "profiles": (list, []), "tree": (list, ["servers"]),
         "correction": (str, "holm")}
#: the gate's default thresholds: metric -> percent change of the median (in the metric's bad direction)
#: beyond which it can regress; "memory" is the peak of the server tree's PSS (or RSS: gate.memory)
GATE_DEFAULTS: dict[str, float] = {"rps": 10.0, "cpu_us_per_request": 10.0, "memory": 10.0}
_MEMORY_METRICS = {"pss": "pss_peak_mib", "rss": "rss_peak_mib"}
_SERVER = {"label": (str, ""), "server": (str, ""), "set": (dict, {}), "app": (str, ""),
           "suite_set": (dict, {}), "description": (str, ""), "httpd_conf": (str, ""),
           "url": (str, ""), "pid": (int, 0), "pidfile": (str, ""), "status_url": (str, ""),
           "allow_attacks": (bool, False), "cafile": (str, ""), "insecure": (bool, False), "python": (str, "")}
#: the keys of a server that is already running (``url``), and those that only a launched server takes
_URL_ONLY = ("pid", "pidfile", "status_url", "allow_attacks", "cafile", "insecure")
_LAUNCH_ONLY = ("set", "suite_set", "app", "httpd_conf", "python")
#: ``${VAR}`` or ``${VAR:-default}`` in a server's ``python``: the interpreter's path differs by machine
_ENV_REF = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
#: the ``server`` of an entry given as a URL: neither started nor stopped by the harness
URL_SERVER = "url"
#: why an attack-like profile or suite did not run against a non-loopback URL server
ATTACK_NOT_RUN = "not run: attack-like, needs --allow-attacks"
#: the launcher's server that runs a user's own httpd.conf (the entry's ``httpd_conf``)
CONF_SERVER = "apache-conf"


class MatrixError(ValueError):
    """A matrix that cannot run; the message names the file and the key path."""


@dataclass(frozen=True)
class ServerEntry:
    """One server of the matrix: a launcher name, its label in the tables, and its directives."""

    label: str
    server: str
    set: dict = field(default_factory=dict)  # directives for the load profiles
    suite_set: dict = field(default_factory=dict)  # directives for the suites (over the suites' own defaults)
    app: str = ""
    description: str = ""
    httpd_conf: str = ""  # apache-conf: the user's httpd.conf it runs (an absolute path)
    url: str = ""  # a server already running (server "url"): its base URL, no trailing slash
    pid: int = 0  # ... its parent's PID when it runs on this machine (sampled), else 0
    pidfile: str = ""  # ... or the file that holds that PID, read when the run starts (an absolute path)
    status_url: str = ""  # ... its mod_status page, polled with ?auto during each profile
    allow_attacks: bool = False  # ... attack-like profiles and suites run against it although not on loopback
    cafile: str = ""  # ... https: the CA bundle its certificate is checked against (an absolute path)
    insecure: bool = False  # ... https: its certificate is not checked (a self-signed staging server)
    python: str = ""  # the interpreter a launched server runs on: a path (absolute) or a name on PATH; "": ours

    @property
    def loopback(self) -> bool:
        """Whether the server is this machine's: launched by us, or a URL whose host is on loopback."""
        if not self.url:
            return True
        from suites.plugin import is_loopback

        return is_loopback(urlsplit(self.url).hostname or "")

    @property
    def access(self) -> Access:
        """How the drivers reach it: its https certificate check and the attack opt-in."""
        return Access(cafile=self.cafile, insecure=self.insecure, allow_attacks=self.allow_attacks)

    def attack_refusal(self, attack_like: bool) -> str | None:
        """Why an attack-like profile or suite may not run against this server (the suites' rule:
        a non-loopback target needs ``allow_attacks``), or None when it may."""
        if not attack_like or self.allow_attacks or self.loopback:
            return None
        return ATTACK_NOT_RUN


@dataclass(frozen=True)
class Profile:
    """One load profile: a driver and its parameters (every key validated against DRIVERS)."""

    name: str
    driver: str
    duration: float
    params: dict
    sweep_of: str = ""  # the swept profile this one is a point of ("hello-sweep" for "hello-sweep-c8")

    def get(self, key: str) -> Any:
        """The parameter ``key``, or the driver's default for it."""
        if key in self.params:
            return self.params[key]
        return DRIVERS[self.driver][key][1]


@dataclass(frozen=True)
class GateSpec:
    """The regression gate's rule for this matrix (``gate:`` section; docs/gate.md).

    A metric regresses when its median moves beyond ``thresholds[metric]`` percent in its bad
    direction (requests/s down, CPU and memory up) and a one-sided Mann-Whitney U test on the
    trials gives p < ``alpha``. Thresholds are stored as positive percentages keyed by the
    run document's metric names (``memory`` resolved to ``pss_peak_mib`` or ``rss_peak_mib``).
    """

    thresholds: dict[str, float] = field(default_factory=lambda: {
        "rps": 10.0, "cpu_us_per_request": 10.0, "pss_peak_mib": 10.0})
    memory: str = "pss"  # pss | rss: which peak the "memory" threshold applies to
    alpha: float = 0.05
    min_trials: int = 3  # fewer ok trials on either side: not measured
    profiles: tuple[str, ...] = ()  # profiles gated; empty: all of the matrix's
    tree: tuple[str, ...] = ("servers",)  # --against: what each side's servers import from that side's tree
    correction: str = "holm"  # holm: p-values corrected for the number of metrics compared; none: per metric

    @property
    def memory_metric(self) -> str:
        """The run document's metric the ``memory`` threshold applies to."""
        return _MEMORY_METRICS[self.memory]

    def to_dict(self) -> dict:
        """JSON-ready, in the YAML's terms: ``memory`` rather than the metric name, signed percentages
        (a drop negative), so that it parses back to the same spec."""
        from .results import METRICS

        thresholds: dict[str, float | None] = {k: None for k in GATE_DEFAULTS}  # a default turned off: null
        thresholds.update({("memory" if k == self.memory_metric else k): (-v if METRICS[k][1] == "higher" else v)
                           for k, v in self.thresholds.items()})
        return {"thresholds": thresholds, "memory": self.memory, "alpha": self.alpha,
                "min_trials": self.min_trials, "profiles": list(self.profiles), "tree": list(self.tree),
                "correction": self.correction}


@dataclass(frozen=True)
class Matrix:
    """A validated matrix."""

    name: str
    source: str
    description: str
    trials: int
    warmup: float
    reference: str
    servers: tuple[ServerEntry, ...]
    suites: tuple[str, ...]
    profiles: tuple[Profile, ...]
    quiet_seconds: float
    max_other_cpu_percent: float
    pinning: str
    start_timeout: float
    suite_timeout: float
    profile_grace: float
    suite_workers: int
    conformance_workers: int = 0  # 0: suite_workers; more: conformance runs in a pytest of its own with them
    peers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # label -> the reference servers beside it
    gate: GateSpec = field(default_factory=GateSpec)  # the regression gate's thresholds (harness gate)
    scoreboard: bool = True  # poll /server-status?auto during each profile (harness/scoreboard.py)

    def trials_of(self, profile: "Profile") -> int:
        """How many measured trials ``profile`` gets (its own ``trials``, else the matrix's)."""
        return profile.params.get("trials") or self.trials

    def to_dict(self) -> dict:
        """The effective matrix (defaults filled in), JSON-ready, for the results document."""
        return {
            "name": self.name, "source": self.source, "description": self.description,
            "trials": self.trials, "warmup": self.warmup, "reference": self.reference,
            "servers": [dataclasses.asdict(s) for s in self.servers],
            "peers": {k: list(v) for k, v in self.peers.items()},
            "suites": list(self.suites),
            "profiles": {p.name: {"driver": p.driver, "duration": p.duration,
                                  **{k: p.get(k) for k in DRIVERS[p.driver] if k not in ("driver", "duration")},
                                  **({"sweep_of": p.sweep_of} if p.sweep_of else {})}
                         for p in self.profiles},
            "quiet": {"seconds": self.quiet_seconds, "max_other_cpu_percent": self.max_other_cpu_percent},
            "pinning": self.pinning,
            "timeouts": {"start": self.start_timeout, "suite": self.suite_timeout,
                         "profile_grace": self.profile_grace},
            "suite_workers": self.suite_workers,
            "conformance_workers": self.conformance_workers,
            "gate": self.gate.to_dict(),
            "scoreboard": self.scoreboard,
        }


def known_servers() -> list[str]:
    """Every name the launcher knows, sorted, whether or not it can start on this machine
    (nothing is probed: a matrix naming a server not installed here still loads)."""
    from servers.launcher import names

    return sorted(names())


def builtin_matrices() -> dict[str, Path]:
    """Name -> file of every built-in matrix."""
    return {p.stem: p for p in sorted(MATRIX_DIR.glob("*.yaml"))}


def load_matrix(name_or_path: str | os.PathLike) -> Matrix:
    """Load a built-in matrix by name (``all``, ``quick``, ``ci``) or a YAML file by path."""
    text_name = os.fspath(name_or_path)
    builtins = builtin_matrices()
    if text_name in builtins:
        path = builtins[text_name]
    else:
        path = Path(text_name)
        if not path.is_file():
            raise MatrixError(
                f"{text_name}: no such matrix file, and not a built-in matrix ({', '.join(builtins)})")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MatrixError(f"{path}: not valid YAML: {exc}") from None
    return parse_matrix(doc, source=str(path), name=path.stem)


def suggest(key: str, allowed) -> str:
    """" (did you mean 'X'?)" for the closest allowed name to a misspelt ``key``, or "" (for error messages)."""
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_keys(src: str, where: str, doc: dict, schema: dict) -> dict:
    """Type-check ``doc`` against ``schema``; return it with defaults filled in."""
    out = {}
    for key in doc:
        if key not in schema:
            raise MatrixError(f"{src}: unknown key {where}{key!r}{suggest(str(key), schema)}; "
                              f"valid keys: {', '.join(schema)}")
    for key, (typ, default) in schema.items():
        if key not in doc:
            if default is None:
                raise MatrixError(f"{src}: {where}{key!r} is required")
            out[key] = default
            continue
        value = doc[key]
        types = typ if isinstance(typ, tuple) else (typ,)
        if not isinstance(value, typ) or (isinstance(value, bool) and bool not in types):
            raise MatrixError(f"{src}: {where}{key!r} must be {_typename(typ)}, not {value!r}")
        out[key] = value
    return out


def _typename(typ) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping",
             bool: "true or false"}
    if isinstance(typ, tuple):
        return "a number" if set(typ) == {int, float} else " or ".join(names[t] for t in typ)
    return names[typ]


def _positive(src: str, where: str, value: float, *, zero_ok: bool = False) -> None:
    if value < 0 or (value == 0 and not zero_ok):
        raise MatrixError(f"{src}: {where} must be {'>= 0' if zero_ok else '> 0'}, not {value!r}")


def _server(src: str, i: int, item: Any) -> ServerEntry:
    where = f"servers[{i}]."
    if isinstance(item, str):
        return ServerEntry(label=item, server=item)
    if not isinstance(item, dict):
        raise MatrixError(f"{src}: servers[{i}] must be a server name or a mapping, not {item!r}")
    d = _check_keys(src, where, item, _SERVER)
    if d["url"] or d["server"] == URL_SERVER:
        return _url_server(src, where, item, d)
    if not d["server"]:
        raise MatrixError(f"{src}: {where}'server' is required (a launcher name), or 'url' for a running server")
    wrong = [k for k in _URL_ONLY if k in item]
    if wrong:
        raise MatrixError(f"{src}: {where}{wrong[0]} goes with url (a server already running), not with server")
    for key in ("set", "suite_set"):
        for k in d[key]:
            if not isinstance(k, str):
                raise MatrixError(f"{src}: {where}{key} has a non-text directive name {k!r}")
    if (d["server"] == CONF_SERVER) != bool(d["httpd_conf"]):
        raise MatrixError(f"{src}: {where}httpd_conf goes with server {CONF_SERVER} (its httpd.conf), "
                          f"and only with it")
    return ServerEntry(label=d["label"] or d["server"], server=d["server"], set=dict(d["set"]),
                       suite_set=dict(d["suite_set"]), app=d["app"], description=d["description"],
                       httpd_conf=_conf_path(src, d["httpd_conf"]), python=_python(src, where, d))


def _python(src: str, where: str, d: dict) -> str:
    """The entry's ``python``: ``${VAR}``/``${VAR:-default}`` expanded, ``~`` and a relative path (one with a
    slash) resolved against the matrix file's directory, a bare name kept for PATH; refused for a server
    that brings its own Python (interpreters.python_refusal). Whether it runs is checked before the run."""
    value = d["python"]
    if not value:
        return ""
    from servers.interpreters import python_refusal
    from servers.launcher import names, reference

    why = python_refusal(reference(d["server"]))
    if why:
        takers = ", ".join(n for n in names() if python_refusal(reference(n)) is None)
        raise MatrixError(f"{src}: {where}python: {d['server']} cannot be given an interpreter: {why}; "
                          f"remove the key (servers that take it: {takers})")

    def env(m: re.Match) -> str:
        if m.group(1) in os.environ:
            return os.environ[m.group(1)]
        if m.group(2) is None:
            raise MatrixError(f"{src}: {where}python: ${{{m.group(1)}}} is not set; set it to an interpreter's "
                              f"path, or give a default: ${{{m.group(1)}:-python3.12}}")
        return m.group(2)

    value = os.path.expanduser(_ENV_REF.sub(env, value).strip())
    if not value:
        raise MatrixError(f"{src}: {where}python is empty after expanding {d['python']!r}")
    return _conf_path(src, value) if "/" in value else value


def _url_server(src: str, where: str, item: dict, d: dict) -> ServerEntry:
    """An entry for a server that is already running: its URL, and how (if at all) to sample it."""
    wrong = [k for k in _LAUNCH_ONLY if k in item]
    if wrong:
        raise MatrixError(f"{src}: {where}{wrong[0]} goes with a launched server; a url server runs as it is")
    url = _base_url(src, where + "url", d["url"])
    if d["pid"] and d["pidfile"]:
        raise MatrixError(f"{src}: {where}give pid or pidfile, not both")
    _positive(src, where + "pid", d["pid"], zero_ok=True)
    status = _base_url(src, where + "status_url", d["status_url"]) if d["status_url"] else ""
    if d["insecure"] and d["cafile"]:
        raise MatrixError(f"{src}: {where}give cafile or insecure, not both")
    return ServerEntry(label=d["label"] or urlsplit(url).netloc, server=URL_SERVER, description=d["description"],
                       url=url, pid=d["pid"], pidfile=_conf_path(src, d["pidfile"]), status_url=status,
                       allow_attacks=d["allow_attacks"], cafile=_conf_path(src, d["cafile"]), insecure=d["insecure"])


def _base_url(src: str, where: str, url: str) -> str:
    """``url`` checked (http or https, a host, a port that parses; no credentials, query or fragment),
    without its trailing slash: the harness appends each profile's path to it."""
    parts = urlsplit(url)
    try:
        parts.port
    except ValueError:
        raise MatrixError(f"{src}: {where}: the port of {url!r} is not a number from 1 to 65535") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MatrixError(f"{src}: {where} must be http://HOST[:PORT][/PREFIX] or https://..., not {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise MatrixError(f"{src}: {where}: no credentials, query or fragment in {url!r}")
    return url.rstrip("/")


def _conf_path(src: str, path: str) -> str:
    """``httpd_conf`` made absolute: relative to the matrix file's directory (else the current one)."""
    if not path or os.path.isabs(path):
        return path
    base = os.path.dirname(os.path.abspath(src)) if os.path.isfile(src) else os.getcwd()
    return os.path.join(base, path)


def _profile(src: str, name: str, item: Any) -> Profile:
    where = f"profiles.{name}."
    if not isinstance(item, dict):
        raise MatrixError(f"{src}: profiles.{name} must be a mapping, not {item!r}")
    driver = item.get("driver")
    if driver not in DRIVERS:
        raise MatrixError(f"{src}: {where}driver must be one of {', '.join(DRIVERS)}, not {driver!r}"
                          f"{suggest(str(driver), DRIVERS)}")
    d = _check_keys(src, where, item, DRIVERS[driver])
    _positive(src, where + "duration", d["duration"])
    problems = DRIVER_SPECS[driver].check(d, item)
    if problems:
        raise MatrixError(f"{src}: {where}{problems[0]}")
    _positive(src, where + "trials", d["trials"], zero_ok=True)
    for feature in d["needs"]:
        if feature not in FEATURES:
            raise MatrixError(f"{src}: {where}needs: unknown feature {feature!r}; known: {', '.join(FEATURES)}"
                              f"{suggest(str(feature), FEATURES)}")
    for key in ("connections", "processes", "threads", "users"):
        if key in d:
            _positive(src, where + key, d[key])
    params = {k: v for k, v in d.items() if k not in ("driver", "duration")}
    return Profile(name=name, driver=driver, duration=float(d["duration"]), params=params)


def _expand_sweep(p: Profile) -> list[Profile]:
    """A closed-loop profile with ``sweep: [1, 8, 32]`` becomes one profile per connection count,
    named ``NAME-c1``, ``NAME-c8``, ... (their cells plot as throughput vs concurrency)."""
    counts = p.params.get("sweep") or []
    if not counts:
        return [p]
    return [dataclasses.replace(p, name=f"{p.name}-c{n}", params={**p.params, "connections": n, "sweep": []},
                                sweep_of=p.name) for n in dict.fromkeys(counts)]


def _threshold(src: str, key: str, metric: str, value: Any) -> float | None:
    """One ``gate.thresholds`` value: percent as a number or ``"-10%"``; null turns the metric off."""
    from .results import METRICS

    where = f"gate.thresholds.{key}"
    if value is None:
        return None
    explicit_plus = False
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        explicit_plus = text.startswith("+")
        try:
            number = float(text)
        except ValueError:
            raise MatrixError(f"{src}: {where} must be a percentage such as -10 or '+10%', not {value!r}") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise MatrixError(f"{src}: {where} must be a percentage such as -10 or '+10%', not {value!r}")
    worse_down = METRICS[metric][1] == "higher"  # requests/s: lower is worse
    if worse_down and explicit_plus:
        raise MatrixError(f"{src}: {where}: {key} regresses downwards; write a drop such as -10, not {value!r}")
    if not worse_down and number < 0:
        raise MatrixError(f"{src}: {where}: {key} regresses upwards; write a rise such as +10, not {value!r}")
    magnitude = abs(number)
    if magnitude > 1000 or (worse_down and magnitude >= 100):
        raise MatrixError(f"{src}: {where} is out of range: {value!r}")
    return magnitude


def _gate(src: str, doc: dict, profile_names: list[str]) -> GateSpec:
    """The ``gate:`` section: thresholds over the defaults, the memory figure, alpha, min_trials, profiles."""
    from .results import METRICS

    g = _check_keys(src, "gate.", doc, _GATE)
    if g["memory"] not in _MEMORY_METRICS:
        raise MatrixError(f"{src}: gate.memory must be pss or rss, not {g['memory']!r}")
    if not 0 < g["alpha"] < 1:
        raise MatrixError(f"{src}: gate.alpha must be between 0 and 1, not {g['alpha']!r}")
    _positive(src, "gate.min_trials", g["min_trials"])
    for i, p in enumerate(g["profiles"]):
        if p not in profile_names:
            raise MatrixError(f"{src}: gate.profiles[{i}] {p!r} is not a profile of this matrix"
                              f"{suggest(str(p), profile_names)}; profiles: {', '.join(profile_names) or 'none'}")
    if g["correction"] not in ("holm", "none"):
        raise MatrixError(f"{src}: gate.correction must be holm or none, not {g['correction']!r}")
    if not g["tree"]:
        raise MatrixError(f"{src}: gate.tree must name at least one package (default: [servers])")
    for i, name in enumerate(g["tree"]):
        if not isinstance(name, str) or not name.isidentifier():
            raise MatrixError(f"{src}: gate.tree[{i}] must be a top-level package or module name, not {name!r}")
    memory_metric = _MEMORY_METRICS[g["memory"]]
    allowed = ["memory", *METRICS]
    given = {}
    for key, value in g["thresholds"].items():
        if key not in allowed:
            raise MatrixError(f"{src}: unknown key gate.thresholds.{key!r}{suggest(str(key), allowed)}; "
                              f"valid keys: memory, {', '.join(METRICS)}")
        given[key] = value
    if "memory" in given and memory_metric in given:
        raise MatrixError(f"{src}: gate.thresholds: 'memory' and {memory_metric!r} are the same metric "
                          f"(gate.memory is {g['memory']}); give one")
    thresholds: dict[str, float] = {}
    for key, value in {**GATE_DEFAULTS, **given}.items():
        metric = memory_metric if key == "memory" else key
        t = _threshold(src, key, metric, value)
        if t is not None:
            thresholds[metric] = t
    return GateSpec(thresholds=thresholds, memory=g["memory"], alpha=float(g["alpha"]), min_trials=g["min_trials"],
                    profiles=tuple(dict.fromkeys(g["profiles"])), tree=tuple(dict.fromkeys(g["tree"])),
                    correction=g["correction"])


def parse_matrix(doc: Any, *, source: str = "<matrix>", name: str = "custom") -> Matrix:
    """Validate a matrix document (already parsed YAML) and fill in the defaults."""
    src = source
    if not isinstance(doc, dict):
        raise MatrixError(f"{src}: a matrix is a YAML mapping with at least a 'servers' key")
    d = _check_keys(src, "", doc, _TOP)
    _positive(src, "trials", d["trials"])
    _positive(src, "warmup", d["warmup"], zero_ok=True)
    _positive(src, "suite_workers", d["suite_workers"])
    _positive(src, "conformance_workers", d["conformance_workers"], zero_ok=True)
    quiet = _check_keys(src, "quiet.", d["quiet"], _QUIET)
    timeouts = _check_keys(src, "timeouts.", d["timeouts"], _TIMEOUTS)
    for k, v in timeouts.items():
        _positive(src, f"timeouts.{k}", v)
    if d["pinning"] not in ("auto", "none"):
        raise MatrixError(f"{src}: pinning must be auto or none, not {d['pinning']!r}")
    if not d["servers"]:
        raise MatrixError(f"{src}: servers must list at least one server")
    servers = tuple(_server(src, i, s) for i, s in enumerate(d["servers"]))
    known = known_servers()
    for i, s in enumerate(servers):
        if s.server not in known and not s.url:
            raise MatrixError(f"{src}: servers[{i}]: unknown server {s.server!r}{suggest(s.server, known)}; "
                              f"servers: {', '.join(known)}")
    labels = [s.label for s in servers]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise MatrixError(f"{src}: server label {dup[0]!r} appears twice; give one a label")
    for i, s in enumerate(d["suites"]):
        if s not in SUITES:
            raise MatrixError(f"{src}: suites[{i}] {s!r} is not a suite{suggest(str(s), SUITES)}; "
                              f"suites: {', '.join(SUITES)}")
    profiles = tuple(p for k, v in d["profiles"].items() for p in _expand_sweep(_profile(src, str(k), v)))
    names = [p.name for p in profiles]
    clash = sorted({x for x in names if names.count(x) > 1})
    if clash:
        raise MatrixError(f"{src}: profile {clash[0]!r} appears twice (a sweep's points are named NAME-cN)")
    if not profiles and not d["suites"]:
        raise MatrixError(f"{src}: nothing to run: give suites or profiles")
    if d["reference"] and d["reference"] not in labels:
        raise MatrixError(f"{src}: reference {d['reference']!r} is not a server label of this matrix "
                          f"({', '.join(labels)})")
    peers: dict[str, tuple[str, ...]] = {}
    for label, others in d["peers"].items():
        if not isinstance(others, list) or not all(isinstance(o, str) for o in others):
            raise MatrixError(f"{src}: peers.{label} must be a list of server labels")
        for x in [label, *others]:
            if x not in labels:
                raise MatrixError(f"{src}: peers: {x!r} is not a server label of this matrix{suggest(str(x), labels)}")
        peers[str(label)] = tuple(others)
    gate = _gate(src, d["gate"], [p.name for p in profiles])
    return Matrix(
        peers=peers, gate=gate,
        name=name, source=src, description=d["description"], trials=d["trials"], warmup=float(d["warmup"]),
        reference=d["reference"], servers=servers, suites=tuple(dict.fromkeys(d["suites"])), profiles=profiles,
        quiet_seconds=float(quiet["seconds"]), max_other_cpu_percent=float(quiet["max_other_cpu_percent"]),
        pinning=d["pinning"], start_timeout=float(timeouts["start"]), suite_timeout=float(timeouts["suite"]),
        profile_grace=float(timeouts["profile_grace"]), suite_workers=d["suite_workers"],
        conformance_workers=d["conformance_workers"],
        scoreboard=d["scoreboard"],
    )


def url_matrix(base: Matrix, url: str, **entry: Any) -> Matrix:
    """``base`` (a built-in matrix: its profiles, suites and settings) against the one running server at
    ``url`` (``harness run --target URL``); ``entry`` holds the url server's other keys (pid, pidfile,
    status_url, allow_attacks, cafile, insecure, label).  Reference and peers go: there is one server."""
    given = {k: v for k, v in entry.items() if v not in (None, "", 0, False)}
    server = _server("--target", 0, {"url": url, **given})
    return dataclasses.replace(base, name=f"{base.name}-target", servers=(server,), reference="", peers={})


def probe_entry_python(s: ServerEntry) -> "Interpreter":
    """Probe entry ``s``'s ``python`` with the imports its server and app need (servers.interpreters.probe_python);
    raises LaunchError saying why a run would refuse it."""
    from servers.interpreters import probe_python, python_imports
    from servers.launcher import reference

    server = reference(s.server)
    return probe_python(s.python, python_imports(s.server, server, s.app or None), server=server)


def check_interpreters(matrix: Matrix) -> dict[str, "Interpreter"]:
    """Label -> :class:`servers.interpreters.Interpreter` of every server with ``python``, each probed once
    before anything starts: it must run, be Python >= 3.11 and import the servers of this checkout (and
    the reference server's package and the app's module). MatrixError names the file, the entry, the key
    and the fix (docs/harness.md, "Several Pythons in one run")."""
    from servers.launcher import LaunchError

    found = {}
    for i, s in enumerate(matrix.servers):
        if not s.python:
            continue
        try:
            found[s.label] = probe_entry_python(s)
        except LaunchError as exc:
            raise MatrixError(f"{matrix.source}: server {s.label!r} (servers[{i}] of this run), key python: "
                              f"{exc}") from None
    return found
