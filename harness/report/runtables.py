"""The report's tables of the load profiles: environment, 1-3b, 8 and 9 (docs/report.md).

Every figure is a median over a server x profile's ``ok`` trials with its min-max, and every
ratio divides by the reference server's figure for the same profile (:class:`.sections.Sheet`).
"""

from __future__ import annotations

import statistics
from typing import Any

from ..runview import SOAK_MIN_SECONDS, ProfileCell
from .latency import percentiles_ms
from .sections import PARTIAL_STATUSES, Section, Sheet, Table, align
from .text import DASH, NOT_SAMPLED, clip, fmt_pct, fmt_ratio, fmt_sig, fmt_spread, ratio

__all__ = ["environment", "throughput", "cpu", "memory", "growth", "peers", "flags", "invalid_reason"]


def environment(sheet: Sheet) -> Section:
    """What the figures were measured on, and how: the run, the matrix, CPU, kernel, pinning, packages."""
    run = sheet.run
    env, m = run.environment, run.matrix
    sec = Section("environment", "Environment")
    status = run.status or "unknown"
    if status in PARTIAL_STATUSES:
        sec.items.append(f"Status: {status}. PARTIAL RESULTS: {PARTIAL_STATUSES[status]}; the tables show only "
                         f"what was measured before that.")
    else:
        sec.items.append(f"Status: {status}")
    sec.items.append(f"Run: {run.run_id}; command: {run.command_line}")
    sec.items.append(f"Started {run.doc.get('started') or '?'}, finished {run.doc.get('finished') or 'not finished'}")
    desc = f" ({m['description']})" if m.get("description") else ""
    sec.items.append(f"Matrix: {m.get('name') or '?'}{desc}; {m.get('trials', '?')} trial(s) per profile, "
                     f"interleaved across servers; warm-up {m.get('warmup', '?')} s (discarded)")
    cpus = env.get("cpus_allowed")
    sec.items.append(f"CPU: {env.get('cpu_model') or '?'} x {env.get('cpu_count') or '?'}"
                     + (f" (harness allowed on CPUs {_cpus(cpus)})" if cpus else ""))
    sec.items.append(f"Kernel: {env.get('kernel') or '?'} ({env.get('platform') or '?'}); "
                     f"Python: {env.get('python_implementation') or ''} {env.get('python') or '?'}".replace("  ", " "))
    sec.items.extend(_pythons(run))
    commit = env.get("git_commit")
    dirty = env.get("git_dirty")
    sec.items.append("git commit: " + (commit[:12] if commit else "unknown")
                     + (" + uncommitted changes (dirty)" if dirty else " (clean)" if dirty is False else ""))
    pin = env.get("pinning") or {}
    if pin.get("server_cpus") or pin.get("driver_cpus"):
        sec.items.append(f"Pinning: server on CPU {_cpus(pin.get('server_cpus'))}, load generator on CPU "
                         f"{_cpus(pin.get('driver_cpus'))}, sampler on CPU {_cpus(pin.get('sampler_cpus'))}")
    else:
        sec.items.append("Pinning: none (server and load generator share the CPUs)")
    sec.items.append(f"Reference server for the ratio columns: {sheet.ref}" if sheet.ref
                     else "Reference server: none (no ratio columns)")
    pk = env.get("packages") or {}
    if pk:
        sec.items.append("Packages: " + ", ".join(f"{k} {v}" for k, v in pk.items() if v)
                         + ("; not installed: " + ", ".join(k for k, v in pk.items() if not v)
                            if any(not v for v in pk.values()) else ""))
    return sec


def _pythons(run: Any) -> list[str]:
    """One line per interpreter the servers ran on (run.json ``servers.<label>.python``), naming its servers:
    a matrix entry's ``python`` (docs/harness.md) is the only difference between two such servers."""
    by_python: dict[tuple[str, str], list[str]] = {}
    for label in run.servers:
        py = run.server(label).raw.get("python") or {}
        if py.get("executable"):
            by_python.setdefault((py.get("version") or "?", py["executable"]), []).append(label)
    return [f"Servers on Python {version} ({path}): {', '.join(labels)}"
            for (version, path), labels in by_python.items()]


def _cpus(cpus: Any) -> str:
    if not cpus:
        return "-"
    return ",".join(str(c) for c in cpus)


def _latency(sheet: Sheet, server: str, profile: str) -> list[str]:
    """p50, p99, p99.9: from the ok trials' histograms added together, else ``≈`` the median of their own."""
    st = sheet.run.stats(server, profile)
    ok = [c for c in st.cells if c.ok] if st is not None else []
    merged = percentiles_ms([c.hdr for c in ok]) if ok else None
    out = []
    for key in ("p50_ms", "p99_ms", "p999_ms"):
        if merged is not None:
            out.append(fmt_sig(merged[key]))
            continue
        m = sheet.metric(server, profile, key)
        out.append(DASH if m is None else ("≈" if m.n > 1 else "") + fmt_sig(m.median))
    return out


def throughput(sheet: Sheet) -> Section:
    """Table 1: requests/s and latency per server x profile, open or closed loop."""
    run, ref = sheet.run, sheet.ref
    sec = Section("throughput", "1. Throughput and latency")
    headers = ["server", "profile", "loop", "ok/trials", "req/s", "p50 ms", "p99 ms", "p99.9 ms"]
    if ref:
        headers.append(f"x {ref}")
    headers.append("notes")
    rows = []
    for p in run.profiles:
        mode = run.mode(p)
        if mode == "idle":
            continue
        if mode == "open":
            rate = run.target_rate(p)
            loop = f"open loop{' at ' + fmt_sig(rate) + '/s' if rate else ''}: headline latency"
        else:
            loop = "closed loop: understates the tail"
        ref_rps = sheet.median(ref, p, "rps")
        for s in run.servers:
            why = sheet.status_text(s, p)
            row = [s, p, loop, sheet.trials(s, p)]
            if why is not None:
                row += [why, DASH, DASH, DASH]
            else:
                row += [fmt_spread(sheet.metric(s, p, "rps")), *_latency(sheet, s, p)]
            if ref:
                row.append(fmt_ratio(ratio(sheet.median(s, p, "rps"), ref_rps)))
            row.append(sheet.notes(s, p))
            rows.append(row)
    caption = ("Requests/s: complete responses / measured seconds (load driver), median over the ok trials with "
               "min–max in brackets (ok/trials: how many trials were valid). Latency in ms from the driver's "
               "HdrHistograms: the ok trials' histograms merged, never averaged (≈: the median of the trials' own "
               "percentiles, when the document carries no histograms). Open-loop profiles send at a fixed rate and "
               "time each request from its intended send time (no coordinated omission): their latency is the "
               "headline. Closed-loop latency is measured from the actual send and understates the tail.")
    if ref:
        caption += f" x {ref}: req/s divided by {ref}'s req/s on the same profile (higher is better)."
    sec.tables.append(Table(caption, headers, rows, align(headers, left=("server", "profile", "loop", "notes")),
                            "no load profile ran"))
    return sec


def cpu(sheet: Sheet) -> Section:
    """Table 2: the server tree's CPU per request, and the load generator's own CPU."""
    run, ref = sheet.run, sheet.ref
    sec = Section("cpu", "2. CPU per request")
    headers = ["server", "profile", "ok/trials", "CPU-us/req"]
    if ref:
        headers.append(f"x {ref} (lower is better)")
    headers += ["driver CPU", "generator"]
    rows = []
    for p in run.profiles:
        if run.mode(p) == "idle":
            continue
        ref_cpu = sheet.median(ref, p, "cpu_us_per_request")
        for s in run.servers:
            why = sheet.status_text(s, p)
            st = run.stats(s, p)
            figure = fmt_spread(sheet.metric(s, p, "cpu_us_per_request")) if sheet.sampled(s) else NOT_SAMPLED
            row = [s, p, sheet.trials(s, p), why if why is not None else figure]
            if ref:
                row.append(fmt_ratio(ratio(sheet.median(s, p, "cpu_us_per_request"), ref_cpu)))
            row.append(fmt_spread(sheet.metric(s, p, "driver_cpu_fraction"), fmt=fmt_pct))
            row.append("generator-bound" if st is not None and "generator_bound" in st.flags else "")
            rows.append(row)
    caption = ("Server CPU per request: CPU-seconds of the whole server process tree over the measured window "
               "(psutil sampler) x 10^6 / responses, in microseconds; median over the ok trials (min–max). It is "
               "far less noisy than req/s.")
    if ref:
        caption += (f" x {ref}: ours / {ref}'s CPU-us/req on the same profile; lower is better "
                    f"(0.80x = 20% less CPU per request).")
    caption += (" driver CPU: the load generator's own CPU as a fraction of its CPUs; above 90% the generator, not "
                "the server, set the pace: such trials are flagged generator-bound, counted invalid and left out "
                "of the medians.")
    sec.tables.append(Table(caption, headers, rows, align(headers, left=("server", "profile", "generator")),
                            "no load profile ran"))
    return sec


def memory(sheet: Sheet) -> Section:
    """Table 3: PSS and RSS of the server tree, and PSS per idle keep-alive connection."""
    run, ref = sheet.run, sheet.ref
    sec = Section("memory", "3. Memory")
    headers = ["server", "profile", "ok/trials", "PSS peak MiB", "PSS steady MiB", "RSS peak MiB*",
               "PSS/idle conn KiB", "answered"]
    if ref:
        headers.append(f"PSS x {ref}")
    rows = []
    for p in run.profiles:
        idle = run.mode(p) == "idle"
        ref_pss = sheet.median(ref, p, "pss_peak_mib")
        for s in run.servers:
            why = sheet.status_text(s, p)
            row = [s, p, sheet.trials(s, p)]
            if why is not None:
                row += [why, DASH, DASH, DASH, DASH]
            elif not sheet.sampled(s):
                row += [NOT_SAMPLED, NOT_SAMPLED, NOT_SAMPLED, NOT_SAMPLED if idle else DASH,
                        fmt_spread(sheet.metric(s, p, "answered_fraction"), fmt=fmt_pct) if idle else DASH]
            else:
                row += [fmt_spread(sheet.metric(s, p, "pss_peak_mib")), fmt_spread(sheet.metric(s, p, "pss_steady_mib")),
                        fmt_spread(sheet.metric(s, p, "rss_peak_mib")),
                        fmt_spread(sheet.metric(s, p, "pss_per_idle_conn_kib")) if idle else DASH,
                        fmt_spread(sheet.metric(s, p, "answered_fraction"), fmt=fmt_pct) if idle else DASH]
            if ref:
                row.append(fmt_ratio(ratio(sheet.median(s, p, "pss_peak_mib"), ref_pss)))
            rows.append(row)
    caption = ("Memory of the whole server process tree while the profile ran (psutil sampler), MiB; median over "
               "the ok trials (min–max). PSS (proportional set size) shares each shared page among the processes "
               "that map it, so it sums correctly over a tree; steady = the median PSS sample of the window. "
               "*RSS summed over the tree counts shared pages once per process and overstates prefork (many "
               "children sharing the parent's pages) by 10x or more: do not compare it across MPMs. Idle profiles "
               "(keep-alive connections opened, one request each, then left idle): PSS/idle conn = (steady PSS "
               "while holding - PSS before connecting) / answered connections, KiB; answered = connections that got "
               "an answer / connections opened. A server answers as many as it holds at once: prefork one per "
               "child, worker one per thread, httpd's event ThreadsPerChild + idle threads x "
               "AsyncRequestWorkerFactor per process (ours also reads the heads of connections accepted in the same "
               "batch, so it can answer more); the rest wait in the listen backlog past the timeout.")
    if ref:
        caption += f" PSS x {ref}: PSS peak / {ref}'s PSS peak on the same profile (lower is better)."
    sec.tables.append(Table(caption, headers, rows, align(headers, left=("server", "profile")),
                            "no load profile ran"))
    return sec


def growth(sheet: Sheet) -> Section | None:
    """Table 3b: slopes of PSS and fd count over soak-length profiles (the runner flags growth beyond noise)."""
    run = sheet.run
    long = [p for p in run.profiles if float(run.profile_spec(p).get("duration") or 0) >= SOAK_MIN_SECONDS]
    if not long:
        return None
    sec = Section("growth", "3b. Growth over time (soak)")
    headers = ["server", "profile", "ok/trials", "PSS MiB/min", "USS MiB/min", "fds/min", "growth flagged"]
    rows = []
    for p in long:
        for s in run.servers:
            why = sheet.status_text(s, p)
            st = run.stats(s, p)
            flagged = sorted(f for f in (st.flags if st is not None else ())
                             if f in ("pss_growth", "fd_growth", "pss_step", "fd_step"))
            row = [s, p, sheet.trials(s, p)]
            row += ([why, DASH, DASH, DASH] if why is not None else
                    [fmt_spread(sheet.metric(s, p, "pss_slope_mib_per_min")),
                     fmt_spread(sheet.metric(s, p, "uss_slope_mib_per_min")),
                     fmt_spread(sheet.metric(s, p, "fds_slope_per_min")), ", ".join(flagged) or "no"])
            rows.append(row)
    caption = (f"Profiles of {SOAK_MIN_SECONDS:.0f} s or more: least-squares slope of the server tree's summed PSS "
               "(sampled about once a second) and of its open fd count over the measured window, per minute. "
               "Growth is judged on the window's second half (the first minutes warm caches and heaps): flagged "
               "when the fitted growth over that half exceeds max(2 MiB, 5% of PSS) or 5 fds: as growth "
               "(pss_growth, fd_growth) when the medians of the window's 2nd, 3rd and 4th quarters rise each time "
               "(a trend), as a step (pss_step, fd_step) when it is one jump (an allocation made once). USS (the tree's "
               "private memory) is shown beside PSS: PSS also moves when other processes map the same files (every "
               "Python process shares the interpreter's pages), USS does not.")
    sec.tables.append(Table(caption, headers, rows, align(headers, left=("server", "profile", "growth flagged"))))
    return sec


def peers(sheet: Sheet) -> Section | None:
    """Table 8: each of our MPMs beside its closest reference servers (matrix ``peers``)."""
    run = sheet.run
    peer_map = {k: list(v) for k, v in (run.matrix.get("peers") or {}).items() if v}
    if not peer_map:
        return None
    sec = Section("peers", "8. Beside the reference servers")
    headers = ["server", "profile", "peer", "req/s", "peer req/s", "req/s ours/peer", "CPU-us/req",
               "peer CPU-us/req", "CPU ours/peer", "PSS MiB", "peer PSS MiB", "PSS ours/peer"]
    rows = []
    for ours in [s for s in run.servers if s in peer_map] + [s for s in peer_map if s not in run.servers]:
        for p in run.profiles:
            idle = run.mode(p) == "idle"
            ours_why = sheet.status_text(ours, p)
            for peer in peer_map[ours]:
                peer_why = ("unavailable" if run.unavailable(peer) else None) or sheet.status_text(peer, p)
                row = [ours, p, peer]
                for metric in ("rps", "cpu_us_per_request", "pss_peak_mib"):
                    if idle and metric != "pss_peak_mib":
                        row += [DASH, DASH, DASH]
                        continue
                    a, b = sheet.median(ours, p, metric), sheet.median(peer, p, metric)
                    row += [ours_why or fmt_sig(a), peer_why or fmt_sig(b), fmt_ratio(ratio(a, b))]
                rows.append(row)
    caption = ("Each of our MPMs beside the reference servers closest to it (matrix peers: Apache httpd's same MPM, "
               "gunicorn's closest worker), same profile, same run, medians over the ok trials. ours/peer: our "
               "median divided by the peer's; for req/s higher is better, for CPU-us/req and PSS lower is better. "
               "Idle profiles: PSS only.")
    sec.tables.append(Table(caption, headers, rows, align(headers, left=("server", "profile", "peer"))))
    return sec


def flags(sheet: Sheet) -> Section:
    """Table 9: every cell that is not ok, the noisy trials per server, the servers that could not start."""
    run = sheet.run
    sec = Section("flags", "9. Flags and failures")
    headers = ["server", "profile / suite", "trial", "status", "reason", "flags"]
    rows = []
    collapsed: dict[tuple[str, str], list[str]] = {}
    for c in run.cells:
        if c.status == "ok":
            continue
        server = c.server or "?"
        profile = isinstance(c, ProfileCell)
        what = c.profile if profile else f"suite {c.suite}"
        if c.status == "skipped" and run.unavailable(server):
            collapsed.setdefault((server, c.reason), []).append(str(what))
            continue
        reason = c.reason
        if not profile and not reason:
            reason = sheet.suite_reason(c)
        elif c.status == "invalid" and not reason:
            reason = invalid_reason(c)
        rows.append([server, str(what), str(c.raw.get("trial", DASH)) if profile else DASH, c.status or "?",
                     clip(reason, 200) or DASH, ", ".join(c.flags if profile else c.raw.get("flags") or []) or DASH])
    for (server, reason), whats in collapsed.items():
        rows.append([server, f"all {len(whats)} cells ({', '.join(whats)})", DASH, "skipped",
                     clip(reason, 200) or DASH, DASH])
    sec.tables.append(Table(
        "Every cell that is not ok. invalid = measured, but not the server's capacity (errors, non-2xx answers, "
        "a starved connection or a generator-bound driver): left out of the medians; failed = the server crashed "
        "or hung, or the driver failed (the server's error log is kept under logs/); skipped = the server or "
        "driver cannot run here. Flags: generator_bound (driver above 90% of its CPUs), noisy (other processes "
        "used more CPU than the matrix's quiet threshold just before the trial), starved (a connection never got "
        "an answer), errors, non_2xx, late_sends (open loop: requests sent after their intended time), "
        "server_exited, server_hung. A suite that failed is a finding about the server: see tables 6 and 7.",
        headers, rows, align(headers, left=headers), "every cell is ok"))
    sec.tables.append(_noisy(sheet))
    uh = ["server", "launcher", "why unavailable"]
    urows = [[s, run.server(s).server or s, run.unavailable(s)] for s in run.servers if run.unavailable(s)]
    sec.tables.append(Table("Servers that could not start on this machine (their cells are skipped).",
                            uh, urows, align(uh, left=uh), "every server of the matrix was available"))
    return sec


def _noisy(sheet: Sheet) -> Table:
    """Noisy trials per server, with the quiet-machine check's figure."""
    run = sheet.run
    nh = ["server", "noisy trials", "measured trials", "other CPU % (median, max)"]
    nrows = []
    for s in run.servers:
        cells = [c for c in run.profile_cells(s) if c.status != "skipped"]
        if not cells:
            continue
        other = [c.quiet.get("other_cpu_percent") for c in cells
                 if isinstance(c.quiet.get("other_cpu_percent"), (int, float))]
        other_text = (f"{fmt_sig(statistics.median(other), 2)}, {fmt_sig(max(other), 2)}" if other else DASH)
        nrows.append([s, str(sum(1 for c in cells if "noisy" in c.flags)), str(len(cells)), other_text])
    return Table(
        "Noisy trials per server: trials before which the quiet-machine check saw other processes use more than "
        f"{(run.matrix.get('quiet') or {}).get('max_other_cpu_percent', '?')}% of a CPU (other CPU %: that check's "
        "figure over the server's trials). A noisy trial is kept but should be read with care.",
        nh, nrows, align(nh, left=("server",)), "no profile was measured")


def invalid_reason(cell: ProfileCell) -> str:
    """Why a measured cell is not valid, from its driver result (the runner records only flags)."""
    r = cell.result
    flagged = set(cell.flags)
    parts = []
    errors = {k: v for k, v in (r.get("errors") or {}).items() if v}
    if errors:
        parts.append(f"{sum(errors.values()):,} errors (" + ", ".join(f"{k} {v:,}" for k, v in errors.items()) + ")")
    bad = {k: v for k, v in (r.get("status_counts") or {}).items() if not str(k).startswith("2") and v}
    if bad:
        parts.append("non-2xx answers (" + ", ".join(f"{k} x {v:,}" for k, v in bad.items()) + ")")
    if r.get("starved_connections"):
        parts.append(f"{r['starved_connections']} of {r.get('connections', '?')} connections never answered")
    if "generator_bound" in flagged:
        frac = cell.metrics.get("driver_cpu_fraction", r.get("driver_cpu_fraction"))
        parts.append(f"generator-bound (driver at {fmt_pct(frac)} of its CPUs)")
    if r.get("late_sends"):
        parts.append(f"{r['late_sends']:,} late sends")
    return "; ".join(parts) or ("flags: " + ", ".join(sorted(flagged)) if flagged else "")
