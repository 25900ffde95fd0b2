"""suites/load.py runs as its own locust process against a prefork server.

locust is never imported here (its gevent monkey-patching breaks threaded
code): every run is a subprocess with a deadline, and the results are read
from locust's CSV stats.  locust is optional: without it these tests skip,
naming the install.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.drivers.locust import parse_locust_csv, run_locust as harness_run_locust
from servers.launcher import start

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "suites" / "load.py"
DEADLINE = 60  # seconds for one locust process, far above the few seconds a run takes
LOCUST = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
MODULE = [sys.executable, "-m", "suites.load"]  # the same locust, through the file's own entry point
NOWHERE = "http://127.0.0.1:9"  # loopback, so accepted; never contacted by the runs that exit first

# the request names of suites/load.py's users: the path (and a label where two users share one)
HELLO, ECHO, BYTES, SLEEP = "/", "/echo", "/bytes/65536", "/sleep?ms=50"
KEEPALIVE, CHURN = "/ [keep-alive]", "/ [Connection: close]"

pytestmark = pytest.mark.skipif(
    # find_spec locates the package without importing it into this process
    importlib.util.find_spec("locust") is None, reason="locust is not installed: pip install 'mpm-harness[locust]'")


@pytest.fixture(scope="module")
def server():
    h = start("prefork", {"StartServers": 2, "MaintenanceInterval": 0.1, "Timeout": 5, "KeepAliveTimeout": 2})
    try:
        yield h
    finally:
        h.stop()


def run_locust(host: str, tmp_path: Path, *args: str, entry: list[str] = LOCUST,
               env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    prefix = tmp_path / "load"
    cmd = [*entry, "--headless", "--host", host, "--only-summary", "--csv", str(prefix),
           "--exit-code-on-error", "1", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE,
                          env={**os.environ, **(env or {})})
    stats: dict[str, dict] = {}
    path = Path(f"{prefix}_stats.csv")
    if path.exists():
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                stats[row["Name"]] = row
    return proc, stats


def assert_clean(proc, stats, names: list[str]) -> None:
    """locust exited 0, every named row has requests and no failures, and no other row exists."""
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, detail
    assert sorted(stats) == sorted(names + ["Aggregated"]), f"rows: {sorted(stats)}\n{detail}"
    for name in names + ["Aggregated"]:
        assert int(stats[name]["Request Count"]) > 0, f"{name}: no requests\n{detail}"
        assert int(stats[name]["Failure Count"]) == 0, f"{name}: failures\n{detail}"
    for name in names:  # the method is locust's Type column, not part of the name
        assert stats[name]["Type"] in ("GET", "POST") and name.startswith("/"), (name, stats[name]["Type"])
    assert "No tasks defined" not in proc.stderr, detail


# --------------------------------------------------------------------------- options


def test_help_lists_this_files_options():
    # locust answers --help before importing a locustfile, so the file's own entry point prints it
    proc = subprocess.run([*MODULE, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = " ".join(proc.stdout.split())  # argparse wraps the help text
    assert "--load-profile {none,ramp,step,spike,soak}" in out
    assert "Env LOAD_PROFILE; default none" in out
    assert "--load-seconds <seconds>" in out and "Env LOAD_SECONDS; default 10" in out
    assert "--tags" in out and "--run-time" in out  # locust's own help, with the file's options added


@pytest.mark.parametrize("args, env, message", [
    (["--load-profile", "bogus"], {}, "argument --load-profile: invalid choice: 'bogus' (choose from "),
    ([], {"LOAD_PROFILE": "bogus"}, "argument --load-profile: invalid choice: 'bogus' (choose from "),
    (["--load-seconds", "0"], {}, "argument --load-seconds: must be > 0, not 0"),
    ([], {"LOAD_SECONDS": "ten"}, "argument --load-seconds: not a number of seconds: 'ten'"),
])
def test_locusts_parser_checks_the_options(args, env, message, tmp_path):
    proc, stats = run_locust(NOWHERE, tmp_path, "-u", "1", "-t", "1s", *args, env=env)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert message in proc.stderr
    if "choose from" in message:  # the choices are listed (quoted or not, by Python version)
        choices = proc.stderr.split("choose from", 1)[1]
        assert all(p in choices for p in ("none", "ramp", "step", "spike", "soak")), proc.stderr
    assert not stats


# --------------------------------------------------------------------------- profiles, names


def test_step_profile_basic_users(server, tmp_path):
    proc, stats = run_locust(
        server.url, tmp_path, "-u", "8", "-r", "8", "--load-profile", "step", "--load-seconds", "4",
        "HelloUser", "EchoUser", "BytesUser", "SleepUser",
    )
    assert_clean(proc, stats, [HELLO, ECHO, BYTES, SLEEP])
    assert stats[ECHO]["Type"] == "POST" and stats[HELLO]["Type"] == "GET"


def test_spike_profile_connection_users(server, tmp_path):
    proc, stats = run_locust(
        server.url, tmp_path, "-u", "10", "-r", "10", "--load-profile", "spike", "--load-seconds", "4",
        "KeepAliveUser", "ChurnUser",
    )
    assert_clean(proc, stats, [KEEPALIVE, CHURN])


def test_ramp_profile_from_environment(server, tmp_path):
    proc, stats = run_locust(server.url, tmp_path, "-u", "2", "-r", "2", "HelloUser",
                             env={"LOAD_PROFILE": "ramp", "LOAD_SECONDS": "3"})
    assert_clean(proc, stats, [HELLO])  # without -t, only the profile from the environment ends the run


def test_no_profile_honours_run_time(server, tmp_path):
    proc, stats = run_locust(server.url, tmp_path, "-u", "2", "-r", "2", "-t", "2s", "BytesUser", "SleepUser")
    assert_clean(proc, stats, [BYTES, SLEEP])


def test_soak_profile_mixed_users(server, tmp_path):
    proc, stats = run_locust(
        server.url, tmp_path, "-u", "4", "-r", "4", "--load-profile", "soak", "--load-seconds", "3",
        "EchoUser", "ChurnUser",
    )
    assert_clean(proc, stats, [ECHO, CHURN])


def test_module_entry_point_runs_locust_on_the_file(server, tmp_path):
    proc, stats = run_locust(server.url, tmp_path, "-u", "2", "-r", "2", "-t", "2s", "HelloUser", entry=MODULE)
    assert_clean(proc, stats, [HELLO])


# --------------------------------------------------------------------------- tags


@pytest.mark.parametrize("args, names", [
    (["--tags", "connections", "slow"], [KEEPALIVE, CHURN, SLEEP]),
    (["--tags", "requests", "--exclude-tags", "slow", "echo"], [HELLO, BYTES]),
])
def test_tags_select_user_classes(server, tmp_path, args, names):
    proc, stats = run_locust(server.url, tmp_path, "-u", "6", "-r", "6", "-t", "3s", *args)
    assert_clean(proc, stats, names)  # only the tagged users ran, and none was spawned without a task


def test_tags_that_leave_no_user_are_refused(tmp_path):
    proc, stats = run_locust(NOWHERE, tmp_path, "-u", "1", "-t", "1s", "--tags", "nosuch", "-E", "slow")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "no user class is left by --tags nosuch --exclude-tags slow" in proc.stderr
    assert int(stats.get("Aggregated", {}).get("Request Count", 0) or 0) == 0


# --------------------------------------------------------------------------- what the harness reads


def test_harness_driver_reads_a_short_run(server, tmp_path):
    r = harness_run_locust(server.url, users=3, spawn_rate=3, duration=3, workdir=tmp_path,
                           user_classes=("EchoUser", "KeepAliveUser", "ChurnUser"))
    assert r.ok and r.requests > 0, (r.errors, r.status_counts, r.extra.get("failures"))
    assert r.status_counts == {200: r.requests} and r.errors == {}
    assert r.extra["source"] == "plugin" and r.extra["processes_reported"] == 1
    stats_csv = (tmp_path / "locust_stats.csv").read_text()
    parsed = parse_locust_csv(stats_csv)  # the driver's fallback reads the same file
    assert 0 < parsed["requests"] <= r.extra["locust_requests"] and parsed["failures"] == 0
    names = {row["Name"] for row in csv.DictReader(stats_csv.splitlines())}
    assert names == {ECHO, KEEPALIVE, CHURN, "Aggregated"}


# --------------------------------------------------------------------------- any host: checked without sending

# TEST-NET-1 (RFC 5737): unroutable, and every run below exits at start-up, before a user is spawned
REMOTE = "http://192.0.2.1:9"

# suites/load.py's own functions, called in a child process (importing locust here would patch this one)
_VERDICTS = """
import json, sys
import suites.load as m
cases = json.loads(sys.argv[1])
users = [m.HelloUser, m.EchoUser, m.BytesUser, m.SleepUser, m.KeepAliveUser, m.ChurnUser]
out = {}
for host in cases:
    out[str(host)] = {
        "problem": m.target_problem(host), "loopback": m.is_loopback(host),
        "held": [c.__name__ for c in m.held_back(host, users, False)],
        "held_allowed": [c.__name__ for c in m.held_back(host, users, True)],
        "none_limit": m.run_limit("none", None, 7.0, host), "none_t": m.run_limit("none", 3, 7.0, host),
        "ramp_limit": m.run_limit("ramp", None, 7.0, host),
        "base": m.base_url(host) if m.target_problem(host) is None else None,
    }
print(json.dumps(out))
"""
HOSTS = ["http://192.0.2.1:9", "https://staging.example.org/app/", "http://[2001:db8::1]:8080", "HTTPS://Example.COM",
         "http://127.0.0.1:8080", "http://127.3.4.5:1", "http://[::1]:8080/", "http://localhost:80", "http://LOCALHOST.:1",
         "ftp://192.0.2.1", "192.0.2.1:9", "http://", "http://h:99999", "http://h/?q=1", "http://h/#f", ""]


@pytest.fixture(scope="module")
def verdicts() -> dict[str, dict]:
    import json
    proc = subprocess.run([sys.executable, "-c", _VERDICTS, json.dumps(HOSTS)], cwd=ROOT, capture_output=True,
                          text=True, timeout=DEADLINE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("host", ["http://192.0.2.1:9", "https://staging.example.org/app/",
                                  "http://[2001:db8::1]:8080", "HTTPS://Example.COM"])
def test_any_http_or_https_host_is_accepted(verdicts, host):
    v = verdicts[host]
    assert v["problem"] is None and not v["loopback"], v
    assert v["held"] == ["KeepAliveUser", "ChurnUser"], v  # attack-like: opt-in off loopback
    assert v["held_allowed"] == [], v  # --allow-attacks lets them run
    assert v["none_limit"] == 7.0 and v["none_t"] == 3.0 and v["ramp_limit"] == 7.0, v  # always bounded


def test_a_path_is_a_prefix_without_its_trailing_slash(verdicts):
    assert verdicts["https://staging.example.org/app/"]["base"] == "https://staging.example.org/app"
    assert verdicts["http://[::1]:8080/"]["base"] == "http://[::1]:8080"
    assert verdicts["http://192.0.2.1:9"]["base"] == "http://192.0.2.1:9"


@pytest.mark.parametrize("host", ["http://127.0.0.1:8080", "http://127.3.4.5:1", "http://[::1]:8080/",
                                  "http://localhost:80", "http://LOCALHOST.:1"])
def test_loopback_runs_every_user_and_none_is_unbounded(verdicts, host):
    v = verdicts[host]
    assert v["problem"] is None and v["loopback"] and v["held"] == [], v
    assert v["none_limit"] is None and v["none_t"] == 3.0 and v["ramp_limit"] == 7.0, v  # until -t or Ctrl+C


@pytest.mark.parametrize("host, why", [
    ("ftp://192.0.2.1", "the scheme must be http:// or https://"),
    ("192.0.2.1:9", "the scheme must be http:// or https://"),
    ("http://", "no host name in the URL"),
    ("http://h:99999", "not a URL: Port out of range"),
    ("http://h/?q=1", "a query or fragment cannot prefix request paths"),
    ("http://h/#f", "a query or fragment cannot prefix request paths"),
    ("", "no --host given"),
])
def test_what_is_not_a_base_url_is_refused(verdicts, host, why):
    assert (verdicts[host]["problem"] or "").startswith(why), verdicts[host]


def test_non_loopback_host_passes_start_up(tmp_path):
    # the host is accepted: locust gets as far as the tag filter, which then leaves no user (nothing is sent)
    proc, stats = run_locust(REMOTE, tmp_path, "-u", "1", "-t", "1s", "--tags", "nosuch")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "no user class is left by --tags nosuch" in proc.stderr and "refusing host" not in proc.stderr
    assert not stats or int(stats.get("Aggregated", {}).get("Request Count", 0) or 0) == 0


@pytest.mark.parametrize("host, message", [
    ("ftp://192.0.2.1:9", "refusing host 'ftp://192.0.2.1:9': the scheme must be http:// or https://"),
    ("http://192.0.2.1:9/?a=b", "a query or fragment cannot prefix request paths"),
])
def test_a_bad_url_is_refused_at_start_up(host, message, tmp_path):
    proc, stats = run_locust(host, tmp_path, "-u", "1", "-t", "1s", "HelloUser")
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-3000:]
    assert not stats or int(stats.get("Aggregated", {}).get("Request Count", 0) or 0) == 0


@pytest.mark.parametrize("users, env", [
    (["ChurnUser"], {}),
    (["--tags", "connections"], {}),
    (["KeepAliveUser"], {"LOAD_ALLOW_ATTACKS": "false"}),
])
def test_attack_like_users_need_the_opt_in_off_loopback(users, env, tmp_path):
    proc, stats = run_locust(REMOTE, tmp_path, "-u", "1", "-t", "1s", *users, env=env)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "not run against 'http://192.0.2.1:9' (not loopback), attack-like without --allow-attacks" in proc.stderr
    assert "no user class is left to run" in proc.stderr
    assert not stats or int(stats.get("Aggregated", {}).get("Request Count", 0) or 0) == 0


@pytest.mark.parametrize("env", [{}, {"LOAD_ALLOW_ATTACKS": "true"}])
def test_the_opt_in_is_one_of_this_files_options(env):
    code = ("import suites.load\nfrom locust.argument_parser import get_parser\n"
            "print(get_parser().parse_args(sys.argv[1:]).allow_attacks)")
    args = [] if env else ["--allow-attacks"]
    proc = subprocess.run([sys.executable, "-c", "import sys\n" + code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=DEADLINE, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "True"


def test_insecure_and_ca_cert_exclude_each_other(tmp_path):
    pem = tmp_path / "ca.pem"
    pem.write_text("not read: refused first\n")
    proc, stats = run_locust(NOWHERE, tmp_path, "-u", "1", "-t", "1s", "--insecure", "--ca-cert", str(pem), "HelloUser")
    assert proc.returncode == 2 and "give --insecure or --ca-cert, not both" in proc.stderr, proc.stderr[-3000:]
    proc, stats = run_locust(NOWHERE, tmp_path, "-u", "1", "-t", "1s", "--ca-cert", str(tmp_path / "none.pem"))
    assert proc.returncode == 2 and "argument --ca-cert: no readable file" in proc.stderr, proc.stderr[-3000:]


# --------------------------------------------------------------------------- https


class _Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as locust's clients expect
    timeout = 5

    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = b"Hello, World!"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    """``(url, cert.pem)``: GET / answered over TLS on 127.0.0.1 with a fresh self-signed certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: it makes the self-signed certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=DEADLINE)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}", cert
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=DEADLINE)


def test_https_certificate_is_checked_by_default(https_server, tmp_path):
    url, _cert = https_server
    proc, stats = run_locust(url, tmp_path, "-u", "1", "-r", "1", "-t", "2s", "HelloUser")
    assert proc.returncode == 1, proc.stderr[-3000:]  # every request failed: the self-signed chain is refused
    row = stats["Aggregated"]
    assert int(row["Request Count"]) > 0 and row["Failure Count"] == row["Request Count"], row
    failures = (tmp_path / "load_failures.csv").read_text()
    assert "CERTIFICATE_VERIFY_FAILED" in failures, failures[-2000:]


@pytest.mark.parametrize("how", ["--insecure", "--ca-cert"])
def test_https_self_signed_with_the_opt_in(https_server, tmp_path, how):
    url, cert = https_server
    args = ["--insecure"] if how == "--insecure" else ["--ca-cert", str(cert)]
    proc, stats = run_locust(url, tmp_path, "-u", "2", "-r", "2", "-t", "2s", *args, "HelloUser")
    assert_clean(proc, stats, [HELLO])
