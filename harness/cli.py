"""The ``harness`` command: ``run``, ``list``, ``report``, ``gate``, ``baseline``, ``advise``.

    harness run --matrix all            # every server x every suite and profile -> results/runs/<id>/
    harness run --matrix quick --publish --reference event
    harness run --matrix my.yaml --server prefork --server event
    harness run --target https://staging.example/ --cafile ca.pem    # a running server: quick's profiles, suites
    harness list                        # servers (and why one is unavailable), suites, profiles, matrices
    harness report results/runs/<id>    # rewrite the tables from run.json
    harness gate --against origin/main --matrix ci --summary gate.md   # CI: base vs working tree, interleaved
    harness gate --baseline results/baseline.json [--run results/runs/<id>]
    harness baseline results/runs/<id> -o results/baseline.json
    harness report --compare results/runs/<A> results/runs/<B>   # two runs side by side
    harness advise --thread-safe no --concurrency 50 --app myapp:application   # docs/advisor.md
    harness --version                   # the package version and the Python running it

Exit status: 0 the run completed (cells that failed are results, not
errors), 2 bad input (an unknown matrix, a bad YAML key: the message names
the key and the file), 130 interrupted (the partial results are kept).
``gate``: 0 pass, 1 regression, 2 could not measure or bad input, 130
interrupted (docs/gate.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import platform
import sys
from pathlib import Path

from .matrix import DRIVERS, SUITES, MatrixError, builtin_matrices, load_matrix, probe_entry_python, url_matrix

__all__ = ["main"]


def version() -> str:
    """``harness --version``: the installed package's version and the Python running it."""
    from servers.version import package_version

    return f"harness (mpm-harness {package_version()}), {platform.python_implementation()} {platform.python_version()}"


#: what the harness imports at run time beyond the suites, by import name -> distribution
_HARNESS_NEEDS = {"tabulate": "tabulate", "psutil": "psutil", "hdrh": "hdrhistogram", "matplotlib": "matplotlib"}


def missing_dependencies() -> list[str]:
    """The harness extra's distributions that are not installed (PEP 508 names)."""
    return [dist for mod, dist in _HARNESS_NEEDS.items() if importlib.util.find_spec(mod) is None]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="harness", description="Run the server x suite x profile matrix and "
                                 "publish comparison tables (mpm-harness).")
    ap.add_argument("--version", action="version", version=version())
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a matrix")
    run.add_argument("--matrix", default="quick", metavar="NAME|FILE",
                     help=f"a built-in matrix ({', '.join(builtin_matrices())}) or a YAML file (default: quick)")
    run.add_argument("--server", action="append", default=[], metavar="LABEL",
                     help="run only these servers of the matrix (repeatable)")
    run.add_argument("--trials", type=int, help="override the matrix's number of trials")
    run.add_argument("--no-suites", action="store_true", help="skip the suites")
    run.add_argument("--duration", type=float, metavar="SECONDS",
                     help="override every load profile's duration (e.g. a shorter or longer soak)")
    run.add_argument("--reference", metavar="LABEL", help="the server the ratio columns divide by")
    run.add_argument("--results-dir", default="results/runs", metavar="DIR",
                     help="where run folders are created (default: results/runs)")
    run.add_argument("--publish", action="store_true", help="also write the tables to results/README.md")
    run.add_argument("--profile", action="append", default=[], metavar="NAME",
                     help="run only these load profiles of the matrix (repeatable)")
    _target_arguments(run)
    lst = sub.add_parser("list", help="servers, suites, profiles and matrices")
    lst.add_argument("--matrix", metavar="NAME|FILE", help="also show this matrix's servers and profiles")
    rep = sub.add_parser("report", help="write a run's tables, plots and HTML report again from its run.json, "
                         "or compare two runs (--compare A B)")
    rep.add_argument("run_dir", metavar="RUN_DIR", nargs="?")
    rep.add_argument("--reference", metavar="LABEL")
    rep.add_argument("--publish", action="store_true", help="also write the tables and plots to results/")
    rep.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"),
                     help="two runs side by side: compare.md and compare.html (B's change against A)")
    rep.add_argument("--out", metavar="DIR", help="with --compare: where to write (default: RUN_B's folder)")
    gate = sub.add_parser("gate", help="fail on a throughput / CPU / memory regression (docs/gate.md)",
                          description="Compare the working tree with a base revision (--against, measured side "
                          "by side) or with a recorded baseline. Exit status: 0 pass, 1 regression, 2 could not "
                          "measure or bad input, 130 interrupted.")
    how = gate.add_mutually_exclusive_group(required=True)
    how.add_argument("--against", metavar="REF", help="a git revision: run the matrix on it (in a temporary "
                     "worktree) and on the working tree, trials interleaved (the robust mode)")
    how.add_argument("--baseline", metavar="FILE", help="a baseline recorded by `harness baseline` "
                     "(e.g. results/baseline.json)")
    gate.add_argument("--matrix", default="ci", metavar="NAME|FILE",
                      help="the matrix to run and its gate: thresholds (default: ci)")
    gate.add_argument("--run", metavar="RUN_DIR", help="with --baseline: judge this finished run instead of "
                      "running the matrix")
    gate.add_argument("--server", action="append", default=[], metavar="LABEL",
                      help="gate only these servers of the matrix (repeatable)")
    gate.add_argument("--trials", type=int, help="trials per side (default: the matrix's)")
    gate.add_argument("--summary", metavar="FILE", help="also write the markdown summary here (it is always "
                      "written as gate.md into the run folder)")
    gate.add_argument("--results-dir", default="results/runs", metavar="DIR",
                      help="where run folders are created (default: results/runs)")
    gate.add_argument("--candidate-set", action="append", default=[], metavar="[LABEL:]DIRECTIVE=VALUE",
                      help="testing the gate: an extra directive for the candidate's servers only (all, or the "
                      "one labelled), e.g. BenchCPUWorkMicroseconds=40 to inject a known regression (repeatable)")
    from .advisor import add_arguments as advise_arguments

    advise = sub.add_parser("advise", help="which MPM suits my workload? measured with my app (docs/advisor.md)",
                            description="Measures the candidate MPMs with your app (or reads a run) and recommends "
                            "one, with the evidence and a ready-to-use configuration (docs/advisor.md). Exit "
                            "status: 0 advice given, 2 bad input, 130 interrupted.")
    advise_arguments(advise)
    base = sub.add_parser("baseline", help="record a baseline for `harness gate --baseline` from a run")
    base.add_argument("run_dir", metavar="RUN_DIR")
    base.add_argument("-o", "--output", default="results/baseline.json", metavar="FILE",
                      help="where to write it (default: results/baseline.json)")
    return ap


def _target_arguments(run: argparse.ArgumentParser) -> None:
    """``harness run --target URL`` and the options of that one running server (docs/harness.md)."""
    t = run.add_argument_group("a server already running (--target: the --matrix's profiles and suites "
                               "against it instead of its servers)")
    t.add_argument("--target", metavar="URL", help="http(s)://HOST[:PORT][/PREFIX] of a running server")
    t.add_argument("--target-name", metavar="LABEL", help="its label in the tables (default HOST:PORT)")
    who = t.add_mutually_exclusive_group()
    who.add_argument("--pid", type=int, help="its parent's PID on this machine: its process tree is sampled")
    who.add_argument("--pidfile", metavar="FILE", help="the file holding that PID (httpd's PidFile)")
    t.add_argument("--status-url", metavar="URL", help="its mod_status page, polled with ?auto during profiles")
    tls = t.add_mutually_exclusive_group()
    tls.add_argument("--cafile", metavar="PATH", help="https: check its certificate against this CA bundle")
    tls.add_argument("--insecure", action="store_true", help="https: do not check its certificate")
    run.add_argument("--allow-attacks", action="store_true",
                     help="run attack-like profiles and suites (idle connection floods, slow clients) against "
                          "URL servers that are not on loopback; only against a server you own")


def _with_target(matrix, args):
    """The matrix a run covers: ``--target`` swaps its servers for that URL; ``--allow-attacks`` applies
    to every URL server; ``--profile`` keeps only the named profiles (sweep points by their sweep's name)."""
    if args.target:
        matrix = url_matrix(matrix, args.target, label=args.target_name, pid=args.pid, pidfile=args.pidfile,
                            status_url=args.status_url, cafile=args.cafile, insecure=args.insecure)
    elif args.target_name or args.pid or args.pidfile or args.status_url or args.cafile or args.insecure:
        raise MatrixError("--target-name, --pid, --pidfile, --status-url, --cafile and --insecure go with --target")
    if args.allow_attacks:
        matrix = dataclasses.replace(matrix, servers=tuple(
            dataclasses.replace(s, allow_attacks=True) if s.url else s for s in matrix.servers))
    if args.profile:
        names = {p.name for p in matrix.profiles} | {p.sweep_of for p in matrix.profiles}
        unknown = [x for x in args.profile if x not in names]
        if unknown:
            raise MatrixError(f"{matrix.source}: no profile {unknown[0]!r}; profiles: "
                              f"{', '.join(p.name for p in matrix.profiles)}")
        matrix = dataclasses.replace(matrix, profiles=tuple(
            p for p in matrix.profiles if p.name in args.profile or p.sweep_of in args.profile))
    return matrix


def _select(matrix, labels: list[str], trials: int | None, no_suites: bool, duration: float | None = None):
    """The matrix narrowed by the command line (--server, --trials, --no-suites, --duration)."""
    if labels:
        known = [s.label for s in matrix.servers]
        unknown = [x for x in labels if x not in known]
        if unknown:
            raise MatrixError(f"{matrix.source}: no server labelled {unknown[0]!r}; labels: {', '.join(known)}")
        servers = tuple(s for s in matrix.servers if s.label in labels)
        peers = {k: tuple(x for x in v if x in labels) for k, v in matrix.peers.items() if k in labels}
        ref = matrix.reference if matrix.reference in labels else ""
        matrix = dataclasses.replace(matrix, servers=servers, peers=peers, reference=ref)
    if trials is not None:
        if trials < 1:
            raise MatrixError("--trials must be >= 1")
        matrix = dataclasses.replace(matrix, trials=trials)
    if no_suites:
        matrix = dataclasses.replace(matrix, suites=())
    if duration is not None:
        if not duration > 0:
            raise MatrixError("--duration must be > 0 seconds")
        matrix = dataclasses.replace(
            matrix, profiles=tuple(dataclasses.replace(p, duration=duration) for p in matrix.profiles))
    return matrix


def _cmd_run(args) -> int:
    from .report import render_markdown
    from .report.files import publish, write_tables
    from .runner import run_matrix

    matrix = _select(_with_target(load_matrix(args.matrix), args), args.server, args.trials, args.no_suites,
                     args.duration)
    if args.reference and args.reference not in [s.label for s in matrix.servers]:
        raise MatrixError(f"--reference {args.reference!r} is not a server of the matrix; "
                          f"labels: {', '.join(s.label for s in matrix.servers)}")
    run = run_matrix(matrix, results_dir=args.results_dir, argv=sys.argv)
    paths = write_tables(run.doc, run.run_dir, reference=args.reference)
    print(render_markdown(run.doc, reference=args.reference))
    for p in paths.values():
        print(f"wrote {p}")
    print(f"wrote {run.path}")
    if args.publish:
        print(f"published {publish(run.doc, Path('results'), reference=args.reference, plots_dir=run.run_dir / 'plots')}")
    return 130 if run.doc["status"] == "interrupted" else 0


def _cmd_list(args) -> int:
    from tabulate import tabulate

    from servers.launcher import available

    from .runner import driver_unavailable

    rows = [(name, "yes" if why is None else "no", why or "") for name, why in available().items()]
    print(tabulate(rows, headers=["server", "available", "why not"], tablefmt="github"))
    print()
    print(tabulate([(k, v) for k, v in SUITES.items()], headers=["suite", "pytest path"], tablefmt="github"))
    print()
    rows = [(d, "yes" if driver_unavailable(d) is None else "no", driver_unavailable(d) or "") for d in DRIVERS]
    print(tabulate(rows, headers=["driver", "available", "why not"], tablefmt="github"))
    print()
    rows = []
    for name, path in builtin_matrices().items():
        m = load_matrix(path)
        rows.append((name, len(m.servers), m.trials, ", ".join(m.suites) or "-",
                     ", ".join(p.name for p in m.profiles) or "-"))
    print(tabulate(rows, headers=["matrix", "servers", "trials", "suites", "profiles"], tablefmt="github"))
    if args.matrix:
        m = load_matrix(args.matrix)
        print(f"\nmatrix {m.name} ({m.source}): {m.description}")
        srv = available()
        print(tabulate([(s.label, s.server, _here(s, srv), _python_cell(s),
                         s.url or " ".join(f"{k}={v}" for k, v in s.set.items())) for s in m.servers],
                       headers=["label", "server", "here", "python", "directives"], tablefmt="github"))
        print(tabulate([(p.name, p.driver, p.duration, m.trials_of(p), p.get("description")) for p in m.profiles],
                       headers=["profile", "driver", "seconds", "trials", "what"], tablefmt="github"))
    return 0


def _here(s, srv: dict) -> str:
    """``harness list``'s word for whether a matrix server can run here (a URL server: already running)."""
    if s.url:
        return "running" + (" (sampled by pid)" if s.pid or s.pidfile else " (not sampled here)")
    return srv.get(s.server, "unknown server") or "available"


def _python_cell(s) -> str:
    """``harness list``'s python column: a server's ``python:`` probed as a run would probe it (version and
    path, or why the run would refuse it: docs/harness.md, "Several Pythons in one run"); ``-`` without the key."""
    if not s.python:
        return "-"
    from servers.launcher import LaunchError

    try:
        found = probe_entry_python(s)
    except LaunchError as exc:
        return "refused: " + str(exc).splitlines()[0]
    return f"{found.version} ({found.executable})"


def _cmd_report(args) -> int:
    from .report.files import report_command

    if args.compare:
        if args.run_dir or args.publish:
            raise ValueError("give either RUN_DIR or --compare RUN_A RUN_B, not both (and no --publish)")
        from .compare import render_compare_markdown, write_compare
        from .runview import Run

        paths = write_compare(args.compare[0], args.compare[1], args.out)
        print(render_compare_markdown(Run.load(args.compare[0]), Run.load(args.compare[1])))
        for p in paths.values():
            print(f"wrote {p}")
        return 0
    if not args.run_dir:
        raise ValueError("harness report needs RUN_DIR (or --compare RUN_A RUN_B)")
    report_command(args.run_dir, reference=args.reference, publish=args.publish)
    return 0


def _cmd_gate(args) -> int:
    from . import gate

    if args.run and not args.baseline:
        raise MatrixError("--run goes with --baseline (--against always measures both sides itself)")
    matrix = _select(load_matrix(args.matrix), args.server, args.trials, True)
    extra = gate.parse_candidate_sets(args.candidate_set, [s.label for s in matrix.servers])
    if extra and args.run:
        raise MatrixError("--candidate-set needs a run of its own; it cannot go with --run")
    try:
        if args.against:
            return gate.gate_against(matrix, args.against, trials=args.trials, results_dir=args.results_dir,
                                     summary=args.summary, argv=sys.argv, candidate_sets=extra)
        return gate.gate_baseline(matrix, args.baseline, run_dir=args.run, trials=args.trials,
                                  results_dir=args.results_dir, summary=args.summary, argv=sys.argv,
                                  candidate_sets=extra)
    except (MatrixError, ValueError, KeyboardInterrupt):
        raise
    except Exception:  # the harness itself failed: that is "could not measure", never a regression (1)
        import traceback

        traceback.print_exc()
        print("harness: error: the gate could not measure (the harness failed; traceback above)", file=sys.stderr)
        return 2


def _cmd_advise(args) -> int:
    from .advisor import command

    return command(args)


def _cmd_baseline(args) -> int:
    from .baseline import baseline_command

    return baseline_command(args.run_dir, args.output)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``harness`` console script."""
    args = _parser().parse_args(argv)
    missing = missing_dependencies()
    if missing:
        print(f"harness: error: the harness extra is not installed (missing {', '.join(missing)}): "
              "pip install 'mpm-harness[harness]'", file=sys.stderr)
        return 2
    try:
        return {"run": _cmd_run, "list": _cmd_list, "report": _cmd_report, "gate": _cmd_gate,
                "baseline": _cmd_baseline, "advise": _cmd_advise}[args.command](args)
    except (MatrixError, ValueError) as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
