"""The plots of a run, drawn with matplotlib from ``run.json`` alone (docs/report.md, "Plots").

Each plot is one PNG in the run folder's ``plots/``; :func:`render_plots`
draws every plot the run has data for and says why any other is missing:

* ``throughput_vs_concurrency``: median requests/s of a closed-loop ``sweep``
  profile at each connection count (hollow markers: trials that were not
  valid, e.g. connections never answered because every worker was held);
* ``latency_spectrum_<profile>``: the open-loop latency percentile spectrum
  of the trials' HdrHistograms added together, x = 1/(1-q) on a log scale,
  as HdrHistogram's own percentile plots draw it;
* ``pss_cpu_over_time``: the server tree's PSS and CPU (% of one core) over
  each profile's first trial, from the sampler's series;
* ``scoreboard``: worker states over time (busy / idle / keep-alive /
  closing) from ``/server-status?auto`` polled during each profile, with the
  event MPM's connections parked in the listener;
* ``slowclient_availability``: the share of probes answered during each
  slow-client attack (suites/test_slowclient.py);
* ``threadsafety_corruption``: corrupted requests and lost updates from the
  thread-safety suite's demonstration apps and their controls.

Colours follow the server's order in the run, the same in every plot.
"""

from __future__ import annotations

import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

from ..runview import ProfileCell, Run, as_run  # noqa: E402
from .latency import spectrum  # noqa: E402
from .text import num  # noqa: E402

__all__ = ["Figure", "PlotSet", "PLOTS", "render_plots", "cpu_percent", "describe", "main"]

#: every plot key, in the order the report shows them
PLOTS = ("throughput_vs_concurrency", "latency_spectrum", "pss_cpu_over_time", "scoreboard",
         "slowclient_availability", "threadsafety_corruption")
_DPI = 100
_STATE_COLOURS = {"busy": "#d62728", "keepalive": "#ff7f0e", "closing": "#9467bd", "idle": "#2ca02c"}


@dataclass
class Figure:
    """One PNG written: its key (``latency_spectrum_hello-open``), title, caption and path."""

    key: str
    title: str
    caption: str
    path: Path


@dataclass
class PlotSet:
    """The figures written and, per plot key, why it was not drawn."""

    figures: list[Figure] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)


def render_plots(run: Run | Mapping[str, Any], out_dir: str | Path) -> PlotSet:
    """Draw every plot the run has data for into ``out_dir`` (created); see the module doc."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = as_run(run)
    colours = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(run.servers)}
    result = PlotSet()
    for key, draw in (("throughput_vs_concurrency", _throughput_vs_concurrency),
                      ("latency_spectrum", _latency_spectra),
                      ("pss_cpu_over_time", _pss_cpu_over_time),
                      ("scoreboard", _scoreboard),
                      ("slowclient_availability", _slowclient),
                      ("threadsafety_corruption", _threadsafety)):
        try:
            figures, why = draw(run, colours, out)
        except Exception as exc:  # one plot's bad data must not cost the tables and the other plots
            plt.close("all")
            figures, why = [], f"drawing failed: {type(exc).__name__}: {exc}"
        result.figures += figures
        if not figures:
            result.missing[key] = why
    return result


def _save(fig, out: Path, key: str, title: str, caption: str) -> Figure:
    path = out / f"{key}.png"
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return Figure(key, title, caption, path)


def _ok(cells: list[ProfileCell]) -> list[ProfileCell]:
    return [c for c in cells if c.ok]


# -- throughput vs concurrency --------------------------------------------------------------------

def _sweeps(run: Run) -> dict[str, list[tuple[int, str]]]:
    """Swept profile -> [(connections, point profile)], from the matrix's ``sweep_of`` marks."""
    found: dict[str, list[tuple[int, str]]] = {}
    for name in run.profiles:
        spec = run.profile_spec(name)
        if spec.get("sweep_of") and spec.get("connections"):
            found.setdefault(spec["sweep_of"], []).append((int(spec["connections"]), name))
    return {k: sorted(v) for k, v in found.items() if len(v) >= 2}


def _throughput_vs_concurrency(run: Run, colours: dict, out: Path) -> tuple[list[Figure], str]:
    sweeps = _sweeps(run)
    if not sweeps:
        return [], "the matrix has no closed-loop profile with a `sweep` of connection counts"
    figures = []
    for sweep, points in sweeps.items():
        fig, ax = plt.subplots(figsize=(8, 4.5))
        drawn = False
        for s in run.servers:
            xs, ys, bad_x, bad_y = [], [], [], []
            for conns, profile in points:
                cells = [c for c in run.profile_cells(s, profile) if c.metric("rps") is not None]
                good = [c.metric("rps") for c in _ok(cells)]
                if good:
                    xs.append(conns)
                    ys.append(statistics.median(good))
                elif cells:
                    bad_x.append(conns)
                    bad_y.append(statistics.median([c.metric("rps") for c in cells]))
            if xs or bad_x:
                drawn = True
                ax.plot(xs, ys, marker="o", color=colours[s], label=s)
                if bad_x:
                    ax.scatter(bad_x, bad_y, facecolors="none", edgecolors=colours[s], s=60)
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xscale("log", base=2)
        ax.set_xticks([c for c, _ in points], [str(c) for c, _ in points])
        ax.set_xlabel("keep-alive connections (closed loop)")
        ax.set_ylabel("requests/s (median of trials)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"Throughput vs concurrency ({sweep})")
        key = "throughput_vs_concurrency" if len(sweeps) == 1 else f"throughput_vs_concurrency_{sweep}"
        figures.append(_save(fig, out, key, f"Throughput vs concurrency: {sweep}",
                             "Median requests/s of the valid trials at each connection count. A hollow marker is "
                             "a point with no valid trial (for example connections never answered because every "
                             "worker was held by another keep-alive connection); its value is the raw rate."))
    return figures, "no sweep profile produced figures"


# -- latency spectrum -----------------------------------------------------------------------------

def _open_profiles(run: Run) -> list[str]:
    return [p for p in run.profiles if run.mode(p) == "open"
            and any(c.hdr for s in run.servers for c in run.profile_cells(s, p))]


def _latency_spectra(run: Run, colours: dict, out: Path) -> tuple[list[Figure], str]:
    profiles = _open_profiles(run)
    if not profiles:
        return [], "no open-loop profile with latency histograms (only open-loop latency is free of coordinated omission)"
    figures = []
    for p in profiles:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        drawn = False
        for s in run.servers:
            pts = spectrum([c.hdr for c in _ok(run.profile_cells(s, p)) if c.hdr])
            if not pts:
                continue
            drawn = True
            ax.plot([1 / (1 - q / 100) for q, _ in pts], [v for _, v in pts], color=colours[s], label=s)
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xscale("log")
        ticks = [q for q in (0, 50, 90, 99, 99.9, 99.99, 99.999) if 1 / (1 - q / 100) <= ax.get_xlim()[1]]
        ax.set_xticks([1 / (1 - q / 100) for q in ticks], [f"{q:g}%" for q in ticks])
        ax.minorticks_off()
        ax.set_yscale("log")  # one stalled server must not flatten every other line
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency ms (from intended send time, log)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        rate = run.target_rate(p)
        ax.set_title(f"Latency percentile spectrum: {p}" + (f" at {rate:g} requests/s" if rate else ""))
        figures.append(_save(fig, out, f"latency_spectrum_{p}", f"Latency percentile spectrum: {p}",
                             "The valid trials' HdrHistograms added together. Open loop: each request's latency "
                             "runs from when it was due to be sent, so a stall counts for every request it "
                             "delayed (no coordinated omission). The last point of each line is the maximum."))
    return figures, "no open-loop profile produced figures"


# -- PSS and CPU over time ------------------------------------------------------------------------

def cpu_percent(t: list[float], cpu: list[float], min_dt: float = 0.5) -> tuple[list[float], list[float]]:
    """CPU use as % of one core from cumulative CPU seconds, over steps of at least ``min_dt`` seconds."""
    xs, ys = [], []
    j = 0
    for i in range(1, len(t)):
        if cpu[i] is None or cpu[j] is None:
            continue
        dt = t[i] - t[j]
        if dt >= min_dt:
            xs.append((t[i] + t[j]) / 2)
            ys.append(max(0.0, (cpu[i] - cpu[j]) / dt * 100))
            j = i
    return xs, ys


def _plain_profiles(run: Run) -> list[str]:
    swept = {name for points in _sweeps(run).values() for _, name in points}
    return [p for p in run.profiles if p not in swept]


def _first_series(run: Run, s: str, p: str, key: str = "series") -> Mapping[str, Any] | None:
    """The samples of the first measured trial of ``s`` x ``p`` that has some."""
    for c in run.profile_cells(s, p):
        if c.samples(key) is not None:
            return c.samples(key)
    return None


def _pss_cpu_over_time(run: Run, colours: dict, out: Path) -> tuple[list[Figure], str]:
    profiles = [p for p in _plain_profiles(run) if any(_first_series(run, s, p) for s in run.servers)]
    if not profiles:
        return [], "no profile cell has sampler series"
    fig, axes = plt.subplots(len(profiles), 2, figsize=(12, 2.8 * len(profiles)), squeeze=False)
    for row, p in enumerate(profiles):
        ax_pss, ax_cpu = axes[row]
        for s in run.servers:
            ser = _first_series(run, s, p)
            if ser is None:
                continue
            pts = [(t, v / 2**20) for t, v in zip(ser["t"], ser.get("pss") or []) if v is not None]
            if pts:
                ax_pss.plot([a for a, _ in pts], [b for _, b in pts], color=colours[s], label=s)
            xs, ys = cpu_percent(ser["t"], ser.get("cpu") or [])
            ax_cpu.plot(xs, ys, color=colours[s], label=s)
        ax_pss.set_title(f"{p}: PSS of the server tree", fontsize=10)
        ax_cpu.set_title(f"{p}: CPU of the server tree", fontsize=10)
        ax_pss.set_ylabel("MiB")
        ax_cpu.set_ylabel("% of one core")
        for ax in (ax_pss, ax_cpu):
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
        if row == 0:
            ax_pss.legend(fontsize=7, ncol=2)
        if row == len(profiles) - 1:
            ax_pss.set_xlabel("seconds into the profile (first trial)")
            ax_cpu.set_xlabel("seconds into the profile (first trial)")
    fig.tight_layout()
    return [_save(fig, out, "pss_cpu_over_time", "PSS and CPU over time",
                  "Sampled from /proc by a separate process (harness/sampler/): the server tree's summed PSS "
                  "(read about once a second) and its CPU, reaped children included, as % of one core over "
                  "half-second steps. One row per profile, first trial of each server.")], ""


# -- scoreboard -----------------------------------------------------------------------------------

def _scoreboard(run: Run, colours: dict, out: Path) -> tuple[list[Figure], str]:
    profiles = _plain_profiles(run)
    servers = [s for s in run.servers
               if any((_first_series(run, s, p, "scoreboard") or {}).get("t") for p in profiles)]
    profiles = [p for p in profiles if any(_first_series(run, s, p, "scoreboard") for s in servers)]
    if not servers or not profiles:
        reasons = {c.scoreboard.get("unavailable") for c in run.profile_cells()}
        reasons.discard(None)
        reasons.discard("")
        why = "; ".join(sorted(reasons)) if reasons else "the run did not poll /server-status (matrix scoreboard: false)"
        return [], why
    fig, axes = plt.subplots(len(servers), len(profiles), figsize=(3.6 * len(profiles), 2.3 * len(servers)),
                             squeeze=False, sharex="col")
    for i, s in enumerate(servers):
        for j, p in enumerate(profiles):
            ax = axes[i][j]
            board = _first_series(run, s, p, "scoreboard")
            if board is None:
                ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            else:
                n = min(len(board.get(k) or []) for k in ("t", *_STATE_COLOURS))
                t = board["t"][:n]
                ax.stackplot(t, *[board[k][:n] for k in _STATE_COLOURS], labels=list(_STATE_COLOURS),
                             colors=list(_STATE_COLOURS.values()), alpha=0.8)
                # the polls themselves: the area between two dots is drawn straight, not sampled
                ax.plot(t, [sum(board[k][i] for k in _STATE_COLOURS) for i in range(n)], linestyle="none",
                        marker=".", markersize=3, color="black")
                parked = [v if v is not None else math.nan for v in (board.get("async_keepalive") or [])[:n]]
                if len(parked) == n and any(v == v and v for v in parked):  # NaN-safe: only event prints it
                    ax.plot(t, parked, color="black", linestyle="--", linewidth=1, label="parked keep-alive")
                if board.get("misses"):
                    missed = board["misses"]
                    ax.text(0.98, 0.95, f"{missed} poll{'s' if missed != 1 else ''} missed", ha="right", va="top",
                            transform=ax.transAxes, fontsize=7)
            if i == 0:
                ax.set_title(p, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{s}\nworkers", fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = [], []
    for row in axes:
        for ax in row:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, bbox_to_anchor=(0.5, 1.02))
    fig.supxlabel("seconds into the profile (first trial)", fontsize=9)
    fig.tight_layout()
    left_out = [f"{s} ({_no_board_reason(run, s, profiles)})" for s in run.servers
                if s not in servers and not run.unavailable(s)]
    return [_save(fig, out, "scoreboard", "Scoreboard states over time",
                  "Worker slots by state from /server-status?auto, polled about four times a second during each "
                  "profile: busy (reading or writing a request), keep-alive (a worker waiting on an idle "
                  "connection), closing, idle. The dashed line is the event MPM's keep-alive connections parked "
                  "in the listener, which hold no worker. Dots mark the polls; between two dots the area is drawn "
                  "straight. A poll waits for a free worker like any request, so a server whose workers are all "
                  "held (prefork with every child in keep-alive) answers few polls and misses some (counted in "
                  "the corner); the event MPM stops accepting while it is at its connection limit, so its polls "
                  "wait too."
                  + (f" Not shown: {'; '.join(left_out)}." if left_out else ""))], ""


def _no_board_reason(run: Run, server: str, profiles: list[str]) -> str:
    for p in profiles:
        for c in run.profile_cells(server, p):
            if c.scoreboard.get("unavailable"):
                return c.scoreboard["unavailable"]
    return "no samples"


# -- suites ---------------------------------------------------------------------------------------

def _grouped_bars(ax, groups: list[str], servers: list[str], value, colours: dict) -> bool:
    width = 0.8 / max(1, len(servers))
    drawn = False
    for k, s in enumerate(servers):
        xs, ys = [], []
        for g, group in enumerate(groups):
            v = value(s, group)
            if v is not None:
                xs.append(g + (k - (len(servers) - 1) / 2) * width)
                ys.append(v)
        if xs:
            drawn = True
            bars = ax.bar(xs, ys, width=width, color=colours[s], label=s)
            ax.bar_label(bars, fmt="%g", fontsize=6)  # a zero is a result: show it, not an empty gap
    ax.set_xticks(range(len(groups)), groups, fontsize=7, rotation=30, ha="right")
    return drawn


def _slowclient(run: Run, colours: dict, out: Path) -> tuple[list[Figure], str]:
    table: dict[tuple[str, str], float] = {}
    groups: list[str] = []
    for s in run.servers:
        for c in run.cases(s, "slowclient"):
            props = c.properties
            avail = num(props.get("availability"))
            if avail is None or not props.get("attack"):
                continue
            group = f"{props['attack']} {props.get('level', '')} ({props.get('protection', '')})"
            if group not in groups:
                groups.append(group)
            table[(s, group)] = avail
    if not table:
        return [], "the slow-client suite recorded no availability (it did not run)"
    servers = [s for s in run.servers if any(k[0] == s for k in table)]
    groups.sort()
    grid = [[table.get((s, g), math.nan) for s in servers] for g in groups]
    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * len(servers), 1.2 + 0.38 * len(groups)))
    im = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, "–" if v != v else f"{v:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(servers)), servers, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(groups)), groups, fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.04, label="share of probes answered")
    ax.set_title("Service availability during slow-client attacks", fontsize=10)
    return [_save(fig, out, "slowclient_availability", "Availability during slow-client attacks",
                  "suites/test_slowclient.py: while N slow clients attack (slowloris: a header byte at a time; "
                  "slowbody: a body byte at a time; slowread: never reading the answer), a probe client sends "
                  "GET / and the cell is the share of probes answered. Levels: below, at ('capacity') or beyond "
                  "('above') the server's workers, or 20 attackers on the running configuration; the read "
                  "timeout configured is in brackets. '–': the case does not apply to that server or did not run.")], ""


_CORRUPTION = (  # (label, test name prefix, property)
    ("unsafe global:\nwrong request seen", "test_demo_unsafe_current_request_global", "mismatches"),
    ("threading.local\n(control)", "test_control_threading_local_current_request", "mismatches"),
    ("unsafe counter:\nlost updates", "test_demo_unsafe_counter", "lost_updates"),
    ("locked counter\n(control)", "test_control_locked_counter", "lost_updates"),
    ("child crash:\ncollateral failures", "test_crash_isolation", "collateral_failures"),
)


def _threadsafety(run: Run, colours: dict, out: Path) -> tuple[list[Figure], str]:
    table: dict[tuple[str, str], float] = {}
    for s in run.servers:
        for c in run.cases(s, "threadsafety"):
            for label, prefix, prop in _CORRUPTION:
                v = num(c.properties.get(prop))
                if c.name.startswith(prefix) and v is not None:
                    table[(s, label)] = v
    if not table:
        return [], "the thread-safety suite recorded no counts (it did not run)"
    groups = [label for label, _, _ in _CORRUPTION if any(k[1] == label for k in table)]
    servers = [s for s in run.servers if any(k[0] == s for k in table)]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    _grouped_bars(ax, groups, servers, lambda s, g: table.get((s, g)), colours)
    ax.set_ylabel("requests affected")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Thread-safety: corruption by MPM")
    return [_save(fig, out, "threadsafety_corruption", "Thread-safety: corruption counts",
                  "suites/test_threadsafety.py: a WSGI app keeping the current request in a module global, and one "
                  "counting in an unlocked global, under concurrent requests; their controls use threading.local "
                  "and a lock. Prefork runs one request per process, so nothing is corrupted; threaded MPMs "
                  "corrupt the unsafe apps, never the controls. The last group: requests that failed beside one "
                  "that crashed its child.")], ""


def describe(plots: PlotSet) -> str:
    """One line per figure and per missing plot, for the command's output."""
    lines = [f"plot {f.path}" for f in plots.figures]
    lines += [f"no {k} plot: {why}" for k, why in plots.missing.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.report.plots RUN_DIR``: redraw a run's plots into ``RUN_DIR/plots``; 2 on bad input."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m harness.report.plots RUN_DIR", file=sys.stderr)
        return 2
    try:
        run = Run.load(args[0])
    except ValueError as exc:
        print(f"harness report: error: {exc}", file=sys.stderr)
        return 2
    folder = Path(args[0]) if Path(args[0]).is_dir() else Path(args[0]).parent
    print(describe(render_plots(run, folder / "plots")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
