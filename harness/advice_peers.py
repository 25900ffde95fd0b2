"""The advisor's peers: the chosen MPM against the same app on another server (no I/O, no servers).

Peers are the launchers that serve the same WSGI app as our MPMs on another server
(uWSGI, granian, gunicorn, waitress, httpd + mod_wsgi: issue 18's same-app matrix),
marked ``peer`` in the measurements.  They never enter the rules
(:mod:`harness.advice_rules`); once the rules have chosen, :func:`compare_peers`
compares the choice with the peers of the models the workload allows and names one
when it is clearly better: beyond the rules' throughput tie band
(:func:`~harness.advice_rules.throughput_band`), valid, holding the idle connections
(and, with many idle or slow clients, not pinning a worker per idle connection, what
rule ``waiting-clients`` avoids, as httpd's event MPM does), within the memory budget
at its advised size, with that size as a matrix server entry (:func:`peer_sizing`).
docs/advisor.md (Peers) is the user's guide.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from .advice_rules import (IDLE_ANSWERED_MIN, TIE, Measurement, Recommendation, Sizing, Workload, fmt, idle_text,
                           projected_pss, pss_basis, size, throughput_band)

__all__ = ["PeerCheck", "PeerAdvice", "peer_sizing", "peer_docs", "check_peer", "compare_peers"]

#: the validation-only directives a fixed-pool peer's ``set:`` keeps: they check the set against the
#: model's rules (servers.config) though the server itself has no equivalent
_POOL_CHECKS = ("ServerLimit", "ThreadLimit", "MaxRequestWorkers")


@dataclass(frozen=True)
class PeerCheck:
    """One peer against the workload: its PSS at the advised size, why it cannot be named ("" when it can),
    and whether its idle measurement shows an idle connection holding one of its workers."""

    m: Measurement
    sizing: Sizing
    pss_at_size: float | None
    why_not: str
    pins: str = ""

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"label": self.m.label, "server": self.m.server or self.m.label, "model": self.m.mpm,
                "rps": self.m.rps, "cpu_us_per_request": self.m.cpu_us_per_request, "p99_ms": self.m.p99_ms,
                "pss_mib": self.m.pss_mib, "pss_at_advised_size": self.pss_at_size, "status": self.m.status,
                "eligible": not self.why_not, "why_not": self.why_not, "pins_idle": self.pins}


@dataclass(frozen=True)
class PeerAdvice:
    """The peers compared with the recommendation: ``peer-better`` (one is named, with a config),
    ``ours-best`` (none beats ours; the best eligible peer's ratio), or ``no-comparison``."""

    verdict: str
    summary: str
    ours: Measurement | None
    ours_pss: float | None
    best: PeerCheck | None
    ratio: float | None  # the best eligible peer's req/s over ours
    band: float  # the throughput tie band the comparison used
    checked: tuple[PeerCheck, ...]
    config: dict | None = None  # the named peer as a matrix server entry: {label, server, set[, app]}
    docs: str = ""  # where the named peer's directive mapping is documented
    caveats: tuple[str, ...] = ()  # what the comparison cannot vouch for

    def to_dict(self) -> dict:
        """JSON-ready."""
        ours = None if self.ours is None else {
            "label": self.ours.label, "mpm": self.ours.mpm, "rps": self.ours.rps, "p99_ms": self.ours.p99_ms,
            "cpu_us_per_request": self.ours.cpu_us_per_request, "pss_mib": self.ours.pss_mib,
            "pss_at_advised_size": self.ours_pss}
        return {"verdict": self.verdict, "summary": self.summary, "ours": ours,
                "best": self.best.m.label if self.best else "", "ratio": self.ratio, "band": self.band,
                "config": self.config, "docs": self.docs, "caveats": list(self.caveats),
                "sizing_notes": list(self.best.sizing.notes) if self.config and self.best else [],
                "peers": [c.to_dict() for c in self.checked]}


def peer_docs(server: str) -> str:
    """Where a peer's directive mapping is documented."""
    if server.startswith("modwsgi-"):
        return "docs/mod_wsgi.md (Directives; daemon mode: Daemon mode)"
    if server.startswith("gunicorn-"):
        return "docs/reference-servers.md (Directive mapping)"
    return "docs/reference-servers.md (How uWSGI, granian and waitress are started)"


def peer_sizing(model: str, w: Workload, mapped: frozenset[str] | None = None, parks_idle: bool = False) -> Sizing:
    """The ``set:`` of a peer of ``model`` sized for ``w``: the model's own sizing (:func:`size`).

    ``parks_idle``: the run shows the peer answering every idle keep-alive connection opened on its own
    with fewer workers (granian's Rust event loop, gunicorn gthread's selector), so its workers are sized
    for the active connections only and KeepAliveTimeout keeps its default, as for event.

    ``mapped`` is the set of directives the peer applies (None: httpd + mod_wsgi, which takes httpd's
    directives one to one).  A fixed-pool server (uWSGI, granian, gunicorn, waitress) runs
    StartServers processes (x ThreadsPerChild threads) from the start, so StartServers is the pool:
    one process per connection on the prefork model.  Directives it does not apply are left out,
    except ServerLimit, ThreadLimit and MaxRequestWorkers, which only validate the set.
    """
    parks = parks_idle and model != "event"  # event's own sizing already parks them
    base = size(model, replace(w, keepalive_share=0.0) if parks else w)
    extra = ((f"the {w.idle_connections} idle keep-alive connections hold no worker, so none is added for them: "
              f"the run shows it answering every idle connection opened on their own",) if parks and
             w.idle_connections else ())
    if mapped is None:
        return replace(base, notes=(*base.notes, *extra))
    d = dict(base.directives)
    if model == "prefork":
        d["StartServers"] = base.workers
    kept = {k: v for k, v in d.items() if k in mapped or k in _POOL_CHECKS}
    notes = [n for n in base.notes if n.split(" ", 1)[0] in kept]  # a note opens with the directive it sizes
    d = kept
    pool = (f"a fixed pool: StartServers {d['StartServers']} processes" +
            (f" x ThreadsPerChild {d['ThreadsPerChild']} threads" if "ThreadsPerChild" in d else ", one request each")
            + f", all started at once; {', '.join(k for k in _POOL_CHECKS if k in d)} only validate the set")
    return Sizing(model, d, processes=base.processes, workers=base.workers, notes=(*notes, *extra, pool))


def _pins_idle(m: Measurement) -> str:
    """What the idle profile shows: fewer idle connections answered than opened means each held a worker."""
    if m.idle_answered_fraction is None or m.idle_answered_fraction >= IDLE_ANSWERED_MIN:
        return ""
    unit = "process" if m.mpm == "prefork" else "worker thread"
    return (f"answered {fmt(m.idle_answered)} of {m.idle_connections} idle keep-alive connections opened on "
            f"their own: the others waited, so an idle connection holds a {unit} until it closes")


def _peer_screen(w: Workload, m: Measurement, ours: Measurement | None, pss: float | None, n: int) -> str:
    """Why peer ``m`` cannot be named for ``w`` ("" when it can)."""
    if not w.threads_ok and m.mpm != "prefork":
        return "runs several requests per process on threads: the app is not known to be thread-safe"
    if ours is not None and m.app != ours.app:
        return f"served another app ({m.app or 'the built-in one'}), not the one {ours.label} served"
    if not m.valid:
        return f"measured {m.status}" + (f": {m.reason}" if m.reason else "")
    if w.idle_connections and m.holds_idle(w.idle_connections) is False:
        return idle_text(m, w.idle_connections)
    if w.waiting_clients and _pins_idle(m):  # what rule waiting-clients rejects our prefork and worker for
        return f"{_pins_idle(m)}, which rule waiting-clients avoids for many idle or slow clients"
    if w.memory_budget_mib is None:
        return ""
    if pss is None:
        return f"memory not measured, so the {fmt(w.memory_budget_mib)} MiB budget cannot be checked"
    if pss > w.memory_budget_mib:
        return (f"~{fmt(pss)} MiB PSS at the advised size ({pss_basis(m, n)}) is over the "
                f"{fmt(w.memory_budget_mib)} MiB budget by {fmt(pss - w.memory_budget_mib)} MiB")
    return ""


def check_peer(w: Workload, m: Measurement, ours: Measurement | None,
               mapped: frozenset[str] | None = None) -> PeerCheck:
    """Peer ``m`` against the workload: its advised size, PSS there, and why it cannot be named."""
    parks = m.idle_answered_fraction is not None and not _pins_idle(m)
    sizing = peer_sizing(m.mpm, w, mapped, parks_idle=parks)
    pss = projected_pss(m, sizing.processes)
    return PeerCheck(m, sizing, pss, _peer_screen(w, m, ours, pss, sizing.processes), _pins_idle(m))


def compare_peers(w: Workload, rec: Recommendation, measurements: Mapping[str, Measurement],
                  mapped: Mapping[str, frozenset[str] | None] | None = None) -> PeerAdvice | None:
    """Compare the recommendation with the peers measured on the same app and profile (None: no peers).

    Only peers of the models the workload allows (an app not known to be thread-safe: the prefork
    model), measured valid, holding the idle connections the workload needs and within the memory
    budget (their measured PSS, projected to the advised size as ours is) can be named; the fastest of
    them is named when its requests/s are beyond the tie band the rules use (:func:`throughput_band`)
    over ours.  ``mapped``: launcher name -> the directives it applies (:func:`peer_sizing`).
    """
    peers = [m for m in measurements.values() if m.peer]
    if not peers:
        return None
    ours = measurements.get(rec.label) if rec.label else None
    checks = tuple(check_peer(w, m, ours, (mapped or {}).get(m.server or m.label)) for m in peers)
    ours_pss = projected_pss(ours, rec.sizing.processes)
    best = max((c for c in checks if not c.why_not), key=lambda c: c.m.rps, default=None)
    if ours is None or not ours.valid:
        why = f"our {rec.mpm} has no valid measurement to compare with" + (f" ({ours.status})" if ours else "")
        return PeerAdvice("no-comparison", f"no peer named: {why}", ours, ours_pss, best, None, TIE, checks)
    if best is None:
        return PeerAdvice("ours-best", f"no peer can be named for this workload: none of the {len(checks)} "
                          f"measured qualifies (see why below); our {rec.mpm} stands", ours, ours_pss, None, None,
                          TIE, checks)
    band, why_wide = throughput_band({"ours": ours, "peer": best.m})
    ratio = best.m.rps / ours.rps if ours.rps else None
    band_text = f"the {band * 100:.0f} % tie band" + (f": {why_wide}" if why_wide else "")
    if ratio is None or best.m.rps <= ours.rps * (1 + band):
        return PeerAdvice("ours-best", _ours_best(rec, ours, best, ratio, band, band_text), ours, ours_pss, best,
                          ratio, band, checks)
    server = best.m.server or best.m.label
    config = {"label": best.m.label, "server": server, "set": dict(best.sizing.directives)}
    if w.app:
        config["app"] = w.app
    return PeerAdvice("peer-better", _peer_better(w, rec, ours, ours_pss, best, ratio, band_text), ours, ours_pss,
                      best, ratio, band, checks, config, peer_docs(server), _caveats(w, best))


def _caveats(w: Workload, best: PeerCheck) -> tuple[str, ...]:
    """What the figures behind a named peer do not show: another size, another load, slow clients."""
    m, out = best.m, []
    if m.processes not in (None, best.sizing.processes) or m.connections not in (None, w.concurrency):
        out.append(f"{m.label} was measured with {m.processes or '?'} processes at {m.connections or '?'} "
                   f"connections; the entry is sized for {w.concurrency} connections ({best.sizing.processes} "
                   f"processes): measure it with `harness run` to confirm")
    if w.slow_clients:
        out.append(f"slow clients: how {m.label} holds slow senders and readers is in the run's slow-client suite "
                   f"(`harness report RUN_DIR`), which the advisor does not read; only its idle keep-alive "
                   f"measurement is used here")
    return tuple(out)


def _ours_best(rec: Recommendation, ours: Measurement, best: PeerCheck, ratio: float | None, band: float,
               band_text: str) -> str:
    """The "ours is best" line: the best qualifying peer's ratio, and whether it is a tie or slower."""
    where = "within" if ratio is not None and ratio >= 1 - band else "below"
    return (f"no peer beats our {rec.mpm} ({ours.label}, {fmt(ours.rps)} req/s): the best peer that qualifies, "
            f"{best.m.label}, reached {fmt(best.m.rps)} req/s, {ratio or 0:.2f}x ours ({where} {band_text})")


def _peer_better(w: Workload, rec: Recommendation, ours: Measurement, ours_pss: float | None, best: PeerCheck,
                 ratio: float, band_text: str) -> str:
    """The named peer's line: its figures beside ours, the ratio, the band and both PSS at the advised sizes."""
    budget = f", within the {fmt(w.memory_budget_mib)} MiB budget" if w.memory_budget_mib is not None else ""
    return (f"{best.m.label} ({best.m.mpm} model) serves this workload better than our {rec.mpm}: "
            f"{fmt(best.m.rps)} req/s against {ours.label}'s {fmt(ours.rps)}, {ratio:.2f}x (beyond "
            f"{band_text}), ~{fmt(best.pss_at_size)} MiB PSS against ~{fmt(ours_pss)} MiB at the advised "
            f"sizes{budget}")
