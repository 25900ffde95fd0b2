"""Unit tests for servers.config: defaults, clamps, YAML shape, errors, formatting."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from servers.config import (
    DIRECTIVES,
    MPMS,
    ConfigError,
    ReadTimeout,
    RequestReadTimeout,
    ServerConfig,
    default_config,
    format_config,
    is_async,
    is_threaded,
    load_config,
    parse_override,
)

DEFAULT_RRT = RequestReadTimeout(
    handshake=ReadTimeout(0, 0, 0),
    header=ReadTimeout(20, 40, 500),
    body=ReadTimeout(20, 0, 500),
)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path so a relative 'mpm.yaml' appears verbatim in messages."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(directory: Path, text: str, name: str = "mpm.yaml") -> str:
    (directory / name).write_text(textwrap.dedent(text))
    return name


# --------------------------------------------------------------------------- defaults


def test_prefork_defaults_match_httpd() -> None:
    cfg = default_config("prefork")
    assert (cfg.StartServers, cfg.MinSpareServers, cfg.MaxSpareServers) == (5, 10 // 2, 10)
    assert (cfg.MaxRequestWorkers, cfg.ServerLimit) == (256, 256)
    assert (cfg.ThreadsPerChild, cfg.ThreadLimit) == (1, 1)
    assert (cfg.MinSpareThreads, cfg.MaxSpareThreads) == (0, 0)
    assert cfg.daemons_limit == 256
    assert (cfg.min_spare, cfg.max_spare) == (5, 10)


@pytest.mark.parametrize("mpm", ["worker", "event"])
def test_threaded_defaults_match_httpd(mpm: str) -> None:
    cfg = default_config(mpm)
    assert cfg.StartServers == 3
    assert (cfg.MinSpareThreads, cfg.MaxSpareThreads) == (75, 250)
    assert (cfg.MaxRequestWorkers, cfg.ServerLimit) == (400, 16)
    assert (cfg.ThreadsPerChild, cfg.ThreadLimit) == (25, 64)
    assert (cfg.MinSpareServers, cfg.MaxSpareServers) == (0, 0)
    assert cfg.daemons_limit == 16
    assert (cfg.min_spare, cfg.max_spare) == (75, 250)


@pytest.mark.parametrize("mpm", MPMS)
def test_core_defaults_match_httpd(mpm: str) -> None:
    cfg = default_config(mpm)
    assert cfg.mpm == mpm
    assert cfg.Listen == (("127.0.0.1", 8080),)
    assert cfg.KeepAlive is True
    assert cfg.KeepAliveTimeout == 5.0
    assert cfg.MaxKeepAliveRequests == 100
    assert cfg.Timeout == 60.0
    assert cfg.ListenBacklog == 511
    # LimitRequestBody: 1 GiB since httpd 2.4.54 (0, unlimited, before)
    assert (cfg.LimitRequestLine, cfg.LimitRequestFieldSize, cfg.LimitRequestFields, cfg.LimitRequestBody) == (
        8190, 8190, 100, 1073741824)
    assert cfg.GracefulShutdownTimeout == 0
    # httpd's Linux default: AcceptFilter http data, https data (TCP_DEFER_ACCEPT)
    assert cfg.AcceptFilter.lines() == ["http data", "https data"] and cfg.AcceptFilter.defers("http")
    assert cfg.MaxConnectionsPerChild == 0
    assert cfg.AsyncRequestWorkerFactor == 2.0
    assert cfg.RequestReadTimeout == DEFAULT_RRT
    assert (cfg.PidFile, cfg.ErrorLog, cfg.ServerName) == (None, None, None)
    assert cfg.LogLevel == "warn"
    assert cfg.MaintenanceInterval == 1.0
    assert cfg.source is None
    assert cfg.notes == ()


def test_accept_filter_accumulates_per_protocol_and_round_trips() -> None:
    cfg = load_config("worker", overrides={"AcceptFilter": "http none"})
    assert cfg.AcceptFilter.lines() == ["http none", "https data"] and not cfg.AcceptFilter.defers("http")
    cfg = load_config("event", overrides={"AcceptFilter": ["HTTP none", "https none"]})
    assert cfg.AcceptFilter.lines() == ["http none", "https none"]
    cfg = load_config("prefork", overrides={"AcceptFilter": {"http": "httpready"}})
    assert cfg.AcceptFilter.defers("http")  # Linux: any filter but none defers accept
    lines = [line for line in format_config(cfg).splitlines() if line.startswith("AcceptFilter")]
    assert lines == ["AcceptFilter http httpready", "AcceptFilter https data"]
    again = load_config("prefork", overrides=dict([parse_override(lines[0].replace(" ", "=", 1))]))
    assert again.AcceptFilter.filter_for("http") == "httpready"


@pytest.mark.parametrize("bad", ["http", "http data extra", 5, "http d@ta", []])
def test_accept_filter_bad_values_name_the_key(bad) -> None:
    with pytest.raises(ConfigError, match="AcceptFilter"):
        load_config("event", overrides={"AcceptFilter": bad})


def test_config_is_frozen() -> None:
    cfg = default_config("event")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.StartServers = 9  # type: ignore[misc]


def test_mpm_queries() -> None:
    assert [is_threaded(m) for m in MPMS] == [False, True, True]
    assert [is_async(m) for m in MPMS] == [False, False, True]


def test_unknown_mpm_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^<defaults>: mpm: unknown MPM 'winnt'") as info:
        load_config("winnt")
    assert info.value.key == "mpm"
    with pytest.raises(ConfigError):
        is_threaded("beos")


def test_unknown_mpm_names_the_file(in_tmp: Path) -> None:
    name = write(in_tmp, "KeepAlive: On\n")
    with pytest.raises(ConfigError, match=r"^mpm\.yaml: mpm: unknown MPM"):
        load_config("motorz", name)


# --------------------------------------------------------------------------- clamps


def test_prefork_max_request_workers_clamped_to_server_limit() -> None:
    cfg = load_config("prefork", overrides={"ServerLimit": 10, "MaxRequestWorkers": 50})
    assert cfg.MaxRequestWorkers == 10
    assert cfg.notes == (
        "AH00180: MaxRequestWorkers of 50 exceeds ServerLimit value of 10 servers, decreasing "
        "MaxRequestWorkers to 10. To increase, please see the ServerLimit directive.",
    )


def test_prefork_lower_server_limit_alone_lowers_default_workers() -> None:
    # httpd's pre_config fixes MaxRequestWorkers at 256 before ServerLimit is read.
    cfg = load_config("prefork", overrides={"ServerLimit": 100})
    assert (cfg.ServerLimit, cfg.MaxRequestWorkers) == (100, 100)
    assert any("AH00180" in n for n in cfg.notes)


@pytest.mark.parametrize(("mpm", "hard", "ah"), [("prefork", 200000, "AH00175"), ("worker", 20000, "AH00300"),
                                                 ("event", 20000, "AH00497")])
def test_server_limit_hard_maximum(mpm: str, hard: int, ah: str) -> None:
    cfg = load_config(mpm, overrides={"ServerLimit": hard + 1})
    assert cfg.ServerLimit == hard
    assert (f"{ah}: ServerLimit of {hard + 1} exceeds compile-time limit of {hard} servers, "
            f"decreasing to {hard}.") in cfg.notes


@pytest.mark.parametrize(("mpm", "hard", "ah"), [("worker", 20000, "AH00305"), ("event", 100000, "AH00502")])
def test_thread_limit_hard_maximum(mpm: str, hard: int, ah: str) -> None:
    cfg = load_config(mpm, overrides={"ThreadLimit": 150000})
    assert cfg.ThreadLimit == hard
    assert f"{ah}: ThreadLimit of 150000 exceeds compile-time limit of {hard} threads, decreasing to {hard}." in (
        cfg.notes)


def test_threads_per_child_clamped_to_thread_limit() -> None:
    cfg = load_config("worker", overrides={"ThreadsPerChild": 100})
    assert cfg.ThreadsPerChild == 64
    assert cfg.notes[0] == ("AH00310: ThreadsPerChild of 100 exceeds ThreadLimit of 64 threads, decreasing to 64. "
                            "To increase, please see the ThreadLimit directive.")
    # the default MaxRequestWorkers 400 is then rounded down to a multiple of 64
    assert cfg.MaxRequestWorkers == 384
    assert cfg.daemons_limit == 6


def test_max_request_workers_raised_to_threads_per_child() -> None:
    cfg = load_config("event", overrides={"MaxRequestWorkers": 10})
    assert cfg.MaxRequestWorkers == 25
    assert cfg.notes[0].startswith("AH00511: MaxRequestWorkers of 10 is less than ThreadsPerChild of 25, "
                                   "increasing to 25.")


def test_max_request_workers_rounded_down_to_multiple() -> None:
    cfg = load_config("worker", overrides={"MaxRequestWorkers": 260, "ServerLimit": 10})
    assert cfg.MaxRequestWorkers == 250
    assert cfg.daemons_limit == 10
    assert cfg.notes == ("AH00316: MaxRequestWorkers of 260 is not an integer multiple of ThreadsPerChild of 25, "
                         "decreasing to nearest multiple 250, for a maximum of 10 servers.",)


def test_max_request_workers_clamped_to_server_limit_times_threads() -> None:
    cfg = load_config("event", overrides={"MaxRequestWorkers": 275, "ServerLimit": 10})
    assert cfg.MaxRequestWorkers == 250
    assert cfg.notes == ("AH00515: MaxRequestWorkers of 275 would require 11 servers and would exceed ServerLimit "
                         "of 10, decreasing to 250. To increase, please see the ServerLimit directive.",)


def test_default_workers_exceed_a_lowered_server_limit() -> None:
    cfg = load_config("worker", overrides={"ServerLimit": 4})
    assert cfg.MaxRequestWorkers == 100
    assert "would require 16 servers and would exceed ServerLimit of 4, decreasing to 100" in cfg.notes[0]
    assert cfg.StartServers == 3


def test_max_spare_servers_raised_above_min() -> None:
    cfg = load_config("prefork", overrides={"MinSpareServers": 8, "MaxSpareServers": 4})
    assert cfg.MaxSpareServers == 9
    assert cfg.notes == ("MaxSpareServers of 4 is less than MinSpareServers of 8 + 1, increasing to 9 "
                         "(httpd adjusts this silently).",)


def test_max_spare_threads_raised_above_min_plus_threads_per_child() -> None:
    cfg = load_config("event", overrides={"MinSpareThreads": 75, "MaxSpareThreads": 80})
    assert cfg.MaxSpareThreads == 75 + 25 + 1
    assert "MaxSpareThreads of 80 is less than MinSpareThreads of 75 + ThreadsPerChild of 25 + 1, increasing to 101" \
        in cfg.notes[0]


@pytest.mark.parametrize(("mpm", "overrides", "expected"), [
    ("prefork", {"StartServers": 20, "MaxRequestWorkers": 8}, 8),
    ("worker", {"StartServers": 20}, 16),
    ("event", {"StartServers": 5, "MaxRequestWorkers": 50}, 2),
])
def test_start_servers_capped_at_process_limit(mpm: str, overrides: dict, expected: int) -> None:
    cfg = load_config(mpm, overrides=overrides)
    assert cfg.StartServers == expected
    assert any(n.startswith(f"StartServers of {overrides['StartServers']} exceeds the limit of {expected} servers")
               for n in cfg.notes)


def test_min_spare_servers_above_max_request_workers_is_allowed() -> None:
    cfg = load_config("prefork", overrides={"MinSpareServers": 20, "MaxRequestWorkers": 10, "StartServers": 2})
    assert (cfg.MinSpareServers, cfg.MaxSpareServers, cfg.MaxRequestWorkers) == (20, 21, 10)


def test_consistent_values_produce_no_notes() -> None:
    cfg = load_config("worker", overrides={"ThreadsPerChild": 10, "MaxRequestWorkers": 40, "ServerLimit": 4,
                                           "MinSpareThreads": 5, "MaxSpareThreads": 20, "StartServers": 2})
    assert cfg.notes == ()
    assert cfg.daemons_limit == 4


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(("mpm", "ah"), [("prefork", "AH00188"), ("worker", "AH00324"), ("event", "AH00521")])
def test_max_clients_alias(mpm: str, ah: str) -> None:
    cfg = load_config(mpm, overrides={"MaxClients": 150 if mpm != "prefork" else 150})
    assert cfg.MaxRequestWorkers == 150
    assert f"<overrides>: {ah}: MaxClients is deprecated, use MaxRequestWorkers instead." in cfg.notes


def test_max_requests_per_child_alias(in_tmp: Path) -> None:
    name = write(in_tmp, "maxrequestsperchild: 1000\n")
    cfg = load_config("prefork", name)
    assert cfg.MaxConnectionsPerChild == 1000
    assert cfg.notes == ("mpm.yaml: AH00545: MaxRequestsPerChild is deprecated, use MaxConnectionsPerChild "
                         "instead.",)


def test_keys_are_case_insensitive(in_tmp: Path) -> None:
    name = write(in_tmp, """\
        keepalivetimeout: 3
        MAXREQUESTWORKERS: 50
        KeepAlive: off
        EVENT:
          threadsperchild: 10
    """)
    cfg = load_config("event", name)
    assert (cfg.KeepAliveTimeout, cfg.MaxRequestWorkers, cfg.KeepAlive, cfg.ThreadsPerChild) == (3.0, 50, False, 10)


def test_same_directive_twice_keeps_the_last_with_a_note(in_tmp: Path) -> None:
    name = write(in_tmp, "Timeout: 10\ntimeout: 20\nMaxClients: 30\nMaxRequestWorkers: 40\n")
    cfg = load_config("prefork", name)
    assert (cfg.Timeout, cfg.MaxRequestWorkers) == (20.0, 40)
    assert sum("set more than once" in n for n in cfg.notes) == 2


def test_not_implemented_httpd_directive_is_ignored_with_note() -> None:
    cfg = load_config("event", overrides={"MaxMemFree": 2048})
    assert cfg.notes == ("<overrides>: MaxMemFree is not implemented by mpm-harness, ignored",)


def test_directive_table_covers_every_field() -> None:
    fields = {f.name for f in dataclasses.fields(ServerConfig)} - {"mpm", "source", "notes"}
    assert fields == set(DIRECTIVES)


# --------------------------------------------------------------------------- per-MPM sections


CONFIG_WITH_SECTIONS = """\
    KeepAliveTimeout: 2
    MaxRequestWorkers: 100
    MinSpareServers: 2
    ThreadsPerChild: 20
    prefork:
      MaxRequestWorkers: 30
      MaxSpareServers: 6
    worker:
      ThreadsPerChild: 10
    event:
      ThreadsPerChild: 50
      ThreadLimit: 50
      AsyncRequestWorkerFactor: 1.5
      KeepAliveTimeout: 500ms
"""


def test_section_overrides_top_level_for_its_mpm(in_tmp: Path) -> None:
    name = write(in_tmp, CONFIG_WITH_SECTIONS)
    event = load_config("event", name)
    assert (event.ThreadsPerChild, event.ThreadLimit, event.AsyncRequestWorkerFactor) == (50, 50, 1.5)
    assert event.KeepAliveTimeout == 0.5
    assert event.MaxRequestWorkers == 100
    worker = load_config("worker", name)
    assert (worker.ThreadsPerChild, worker.KeepAliveTimeout, worker.MaxRequestWorkers) == (10, 2.0, 100)
    prefork = load_config("prefork", name)
    assert (prefork.MaxRequestWorkers, prefork.MinSpareServers, prefork.MaxSpareServers) == (30, 2, 6)
    assert prefork.source == "mpm.yaml"


def test_top_level_directive_of_another_mpm_is_ignored_with_note(in_tmp: Path) -> None:
    name = write(in_tmp, CONFIG_WITH_SECTIONS)
    prefork = load_config("prefork", name)
    assert prefork.ThreadsPerChild == 1
    assert "mpm.yaml: ThreadsPerChild is not a prefork directive, ignored (it belongs to worker/event)" in (
        prefork.notes)
    event = load_config("event", name)
    assert "mpm.yaml: MinSpareServers is not a event directive, ignored (it belongs to prefork)" in event.notes


def test_directive_of_another_mpm_inside_chosen_section_is_an_error(in_tmp: Path) -> None:
    name = write(in_tmp, "prefork:\n  ThreadsPerChild: 5\n")
    with pytest.raises(ConfigError, match=r"^mpm\.yaml: ThreadsPerChild is not a prefork directive") as info:
        load_config("prefork", name)
    assert info.value.key == "ThreadsPerChild"


def test_sections_for_other_mpms_are_still_validated(in_tmp: Path) -> None:
    name = write(in_tmp, "event:\n  ThreadsPerChild: many\n")
    with pytest.raises(ConfigError, match=r"^mpm\.yaml: event: ThreadsPerChild: expected an integer, got 'many'"):
        load_config("prefork", name)
    name = write(in_tmp, "worker:\n  MaxSpareServers: 5\n")
    with pytest.raises(ConfigError, match="MaxSpareServers is not a worker directive"):
        load_config("event", name)


def test_section_must_be_a_mapping_and_not_nested(in_tmp: Path) -> None:
    with pytest.raises(ConfigError, match=r"^mpm\.yaml: event: expected a mapping"):
        load_config("event", write(in_tmp, "event: 5\n"))
    with pytest.raises(ConfigError, match="cannot be nested"):
        load_config("event", write(in_tmp, "event:\n  worker:\n    StartServers: 2\n"))


def test_empty_section_is_fine(in_tmp: Path) -> None:
    assert load_config("event", write(in_tmp, "event:\n")).notes == ()


def test_overrides_apply_last(in_tmp: Path) -> None:
    name = write(in_tmp, CONFIG_WITH_SECTIONS)
    cfg = load_config("event", name, overrides={"KeepAliveTimeout": 7, "ThreadsPerChild": 25,
                                                "MinSpareServers": 1})
    assert (cfg.KeepAliveTimeout, cfg.ThreadsPerChild) == (7.0, 25)
    assert "<overrides>: MinSpareServers is not a event directive, ignored (it belongs to prefork)" in cfg.notes


def test_overrides_may_carry_a_section() -> None:
    cfg = load_config("worker", overrides={"worker": {"ThreadsPerChild": 5}, "event": {"ThreadsPerChild": 7}})
    assert cfg.ThreadsPerChild == 5


# --------------------------------------------------------------------------- errors


def test_unknown_directive_names_key_file_and_suggestion(in_tmp: Path) -> None:
    name = write(in_tmp, "KeepAliveTimout: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config("event", name)
    assert str(info.value) == "mpm.yaml: unknown directive 'KeepAliveTimout' (did you mean 'KeepAliveTimeout'?)"
    assert (info.value.key, info.value.source) == ("KeepAliveTimout", "mpm.yaml")
    assert isinstance(info.value, ValueError)


def test_unknown_directive_without_a_close_match() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("event", overrides={"Zzyzx": 1})
    assert str(info.value) == "<overrides>: unknown directive 'Zzyzx'"


def test_unknown_directive_inside_section(in_tmp: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown directive 'ThreadPerChild' \(did you mean 'ThreadsPerChild'\?\)"):
        load_config("worker", write(in_tmp, "worker:\n  ThreadPerChild: 5\n"))


def test_wrong_type_names_key_and_file(in_tmp: Path) -> None:
    name = write(in_tmp, "KeepAliveTimeout: abc\n")
    with pytest.raises(ConfigError) as info:
        load_config("prefork", name)
    assert str(info.value) == "mpm.yaml: KeepAliveTimeout: expected a duration in seconds, got 'abc'"
    assert info.value.key == "KeepAliveTimeout"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("StartServers", "five", "StartServers: expected an integer, got 'five'"),
    ("StartServers", 2.5, "StartServers: expected an integer, got 2.5"),
    ("StartServers", True, "StartServers: expected an integer, got True"),
    ("StartServers", 0, "StartServers: must be at least 1, got 0"),
    ("MaxRequestWorkers", -3, "MaxRequestWorkers: must be at least 1, got -3"),
    ("MaxConnectionsPerChild", -1, "MaxConnectionsPerChild: must be at least 0, got -1"),
    ("KeepAlive", "maybe", "KeepAlive: expected On or Off, got 'maybe'"),
    ("KeepAlive", 1, "KeepAlive: expected On or Off, got 1"),
    ("Timeout", 0, "Timeout: must be greater than 0"),
    ("KeepAliveTimeout", -1, "KeepAliveTimeout: must not be negative"),
    ("LogLevel", "verbose", "LogLevel: expected one of emerg, alert, crit"),
    ("ListenBacklog", 0, "ListenBacklog: must be at least 1, got 0"),
    ("LimitRequestLine", 0, "LimitRequestLine: must be at least 1, got 0"),
    ("LimitRequestBody", 2**31, "LimitRequestBody: must be at most 2147483647"),
    ("MaintenanceInterval", "0ms", "MaintenanceInterval: must be greater than 0"),
    ("ServerName", 42, "ServerName: expected a string, got 42"),
])
def test_bad_values_are_refused(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("prefork", overrides={key: value})
    assert str(info.value).startswith(f"<overrides>: {message}")
    assert info.value.key == key


def test_async_request_worker_factor_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="AsyncRequestWorkerFactor argument must be a positive number"):
        load_config("event", overrides={"AsyncRequestWorkerFactor": 0})
    assert load_config("event", overrides={"AsyncRequestWorkerFactor": "0.5"}).AsyncRequestWorkerFactor == 0.5


def test_yaml_syntax_error_names_the_file(in_tmp: Path) -> None:
    name = write(in_tmp, "KeepAlive: On\nListen: [127.0.0.1:8080\n")
    with pytest.raises(ConfigError, match=r"^mpm\.yaml: invalid YAML at line \d+, column \d+") as info:
        load_config("event", name)
    assert info.value.source == "mpm.yaml"


def test_non_mapping_document_names_the_file(in_tmp: Path) -> None:
    name = write(in_tmp, "- KeepAlive\n- Timeout\n")
    with pytest.raises(ConfigError, match=r"^mpm\.yaml: expected a mapping .* got list"):
        load_config("event", name)


def test_non_string_key_is_refused(in_tmp: Path) -> None:
    with pytest.raises(ConfigError, match=r"^mpm\.yaml: directive names must be strings, got 8080"):
        load_config("event", write(in_tmp, "8080: Listen\n"))


def test_missing_file_names_the_file(in_tmp: Path) -> None:
    with pytest.raises(ConfigError, match=r"^nope\.yaml: no such configuration file"):
        load_config("worker", "nope.yaml")


def test_empty_file_gives_defaults(in_tmp: Path) -> None:
    cfg = load_config("worker", write(in_tmp, "# nothing here\n"))
    assert dataclasses.replace(cfg, source=None) == default_config("worker")


# --------------------------------------------------------------------------- RequestReadTimeout


def test_request_read_timeout_string_form() -> None:
    cfg = load_config("event", overrides={"RequestReadTimeout": "handshake=5 header=10-30,MinRate=500 body=30"})
    assert cfg.RequestReadTimeout == RequestReadTimeout(
        handshake=ReadTimeout(5, 0, 0), header=ReadTimeout(10, 30, 500), body=ReadTimeout(30, 0, 0))


def test_request_read_timeout_omitted_stages_keep_defaults() -> None:
    rrt = load_config("event", overrides={"RequestReadTimeout": "body=10,minrate=1000"}).RequestReadTimeout
    assert rrt.body == ReadTimeout(10, 0, 1000)
    assert (rrt.handshake, rrt.header) == (DEFAULT_RRT.handshake, DEFAULT_RRT.header)


def test_request_read_timeout_zero_disables_a_stage() -> None:
    rrt = load_config("event", overrides={"RequestReadTimeout": "header=0"}).RequestReadTimeout
    assert rrt.header == ReadTimeout(0, 0, 0)
    assert not rrt.header.enabled and rrt.body.enabled


def test_request_read_timeout_mapping_form(in_tmp: Path) -> None:
    name = write(in_tmp, """\
        RequestReadTimeout:
          Header: "5-10,MinRate=100"
          body: 0
          handshake: {timeout: 3}
    """)
    rrt = load_config("worker", name).RequestReadTimeout
    assert rrt == RequestReadTimeout(handshake=ReadTimeout(3, 0, 0), header=ReadTimeout(5, 10, 100),
                                     body=ReadTimeout(0, 0, 0))


def test_request_read_timeout_stages_accumulate_like_httpd(in_tmp: Path) -> None:
    name = write(in_tmp, "RequestReadTimeout: header=7\nevent:\n  RequestReadTimeout: body=9\n")
    rrt = load_config("event", name).RequestReadTimeout
    assert (rrt.header, rrt.body) == (ReadTimeout(7, 0, 0), ReadTimeout(9, 0, 0))


@pytest.mark.parametrize(("value", "message"), [
    ("header=40-20,MinRate=500", "header=40-20,MinRate=500: Maximum timeout must be larger than initial timeout"),
    ("header=20-20,MinRate=500", "Maximum timeout must be larger than initial timeout"),
    ("header=20-40", "Must set MinRate option if using timeout range"),
    ("body=20,MinRate=0", "Minimum data rate must be larger than 0"),
    ("body=abc", "not numerical"),
    ("trailer=5", "Unknown RequestReadTimeout parameter 'trailer'"),
    ("header", "Parameter must be in the form 'key=value'"),
    ("", "no stage given"),
    (20, "expected httpd's syntax"),
    ({"header": {"timeout": 10, "max_timeout": 20}}, "Must set MinRate option"),
])
def test_request_read_timeout_errors(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("event", overrides={"RequestReadTimeout": value})
    assert str(info.value).startswith("<overrides>: RequestReadTimeout: ")
    assert message in str(info.value)


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(("value", "seconds"), [
    (2, 2.0), (1.5, 1.5), ("500ms", 0.5), ("500 MS", 0.5), ("2s", 2.0), ("3", 3.0), (".25", 0.25), (0, 0.0),
])
def test_durations(value: object, seconds: float) -> None:
    cfg = load_config("event", overrides={"KeepAliveTimeout": value, "GracefulShutdownTimeout": value})
    assert cfg.KeepAliveTimeout == seconds
    assert cfg.GracefulShutdownTimeout == seconds


def test_timeout_and_maintenance_interval_take_milliseconds() -> None:
    cfg = load_config("prefork", overrides={"Timeout": "250ms", "MaintenanceInterval": "100ms"})
    assert (cfg.Timeout, cfg.MaintenanceInterval) == (0.25, 0.1)


@pytest.mark.parametrize("value", ["5 minutes", "ms", "1e3", "-500ms", None, [5]])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ConfigError, match="^<overrides>: KeepAliveTimeout: "):
        load_config("event", overrides={"KeepAliveTimeout": value})


# --------------------------------------------------------------------------- Listen


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1:8081", (("127.0.0.1", 8081),)),
    ("localhost:80", (("localhost", 80),)),
    ("[::1]:8080", (("::1", 8080),)),
    ("*:8080", (("0.0.0.0", 8080),)),
    (9000, (("127.0.0.1", 9000),)),
    ("9000", (("127.0.0.1", 9000),)),
    ("127.0.0.1:0", (("127.0.0.1", 0),)),
    (["127.0.0.1:0", "127.0.0.1:0", "[::1]:0"], (("127.0.0.1", 0), ("127.0.0.1", 0), ("::1", 0))),
    ([8080, "0.0.0.0:8443"], (("127.0.0.1", 8080), ("0.0.0.0", 8443))),
])
def test_listen_forms(value: object, expected: tuple) -> None:
    assert load_config("worker", overrides={"Listen": value}).Listen == expected


def test_listen_ipv6_from_yaml(in_tmp: Path) -> None:
    name = write(in_tmp, 'Listen:\n  - "[::1]:8080"\n  - 127.0.0.1:0\n')
    assert load_config("event", name).Listen == (("::1", 8080), ("127.0.0.1", 0))


@pytest.mark.parametrize(("value", "message"), [
    ("127.0.0.1:70000", "expected a port number 0-65535"),
    ("127.0.0.1", "expected 'host:port'"),
    ("::1:8080", "IPv6 addresses need brackets"),
    ("[fe80::zz]:80", "is not an IPv6 address"),
    ([], "at least one address is required"),
    (["127.0.0.1:8080", "127.0.0.1:8080"], "127.0.0.1:8080 is given more than once"),
    (True, "expected 'host:port'"),
])
def test_bad_listen(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match="^<overrides>: Listen: ") as info:
        load_config("event", overrides={"Listen": value})
    assert message in str(info.value)


# --------------------------------------------------------------------------- parse_override


@pytest.mark.parametrize(("text", "expected"), [
    ("KeepAliveTimeout=2", ("KeepAliveTimeout", 2)),
    ("keepalivetimeout = 500ms", ("KeepAliveTimeout", "500ms")),
    ("KeepAlive=Off", ("KeepAlive", False)),
    ("MaxClients=300", ("MaxClients", 300)),
    ("Listen=[::1]:8080", ("Listen", "[::1]:8080")),
    ("Listen=[8080, 8081]", ("Listen", [8080, 8081])),
    ("Listen=127.0.0.1:0", ("Listen", "127.0.0.1:0")),
    ("RequestReadTimeout=header=10-20,MinRate=100 body=5", ("RequestReadTimeout", "header=10-20,MinRate=100 body=5")),
    ("PidFile=", ("PidFile", None)),
    ("AsyncRequestWorkerFactor=1.5", ("AsyncRequestWorkerFactor", 1.5)),
    ("ServerName=a: b", ("ServerName", "a: b")),
])
def test_parse_override(text: str, expected: tuple) -> None:
    assert parse_override(text) == expected


def test_parse_override_errors() -> None:
    with pytest.raises(ConfigError, match=r"^<overrides>: expected 'Directive=value', got 'KeepAlive'"):
        parse_override("KeepAlive")
    with pytest.raises(ConfigError, match=r"^<overrides>: unknown directive 'KeepAliveTimout' "
                                          r"\(did you mean 'KeepAliveTimeout'\?\)"):
        parse_override("KeepAliveTimout=3")


def test_parse_override_feeds_load_config() -> None:
    overrides = dict(parse_override(t) for t in ["MaxClients=50", "KeepAlive=off", "Listen=[::1]:0"])
    cfg = load_config("prefork", overrides=overrides)
    assert (cfg.MaxRequestWorkers, cfg.KeepAlive, cfg.Listen) == (50, False, (("::1", 0),))
    assert cfg.notes == ("<overrides>: AH00188: MaxClients is deprecated, use MaxRequestWorkers instead.",)


# --------------------------------------------------------------------------- format_config


def _directive_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _reload(cfg: ServerConfig) -> ServerConfig:
    """Feed format_config's lines back through parse_override + load_config."""
    overrides: dict[str, object] = {}
    listens: list[object] = []
    for line in _directive_lines(format_config(cfg)):
        name, value = parse_override(line.replace(" ", "=", 1))
        if name == "Listen":
            listens.append(value)
        else:
            overrides[name] = value
    overrides["Listen"] = listens
    return load_config(cfg.mpm, overrides=overrides)


ROUND_TRIP_YAML = """\
    Listen:
      - 127.0.0.1:0
      - "[::1]:8081"
    KeepAlive: On
    KeepAliveTimeout: 1500ms
    MaxKeepAliveRequests: 0
    Timeout: 30
    RequestReadTimeout: handshake=0 header=2.5-10,MinRate=100 body=0
    LimitRequestBody: 1048576
    GracefulShutdownTimeout: 3
    PidFile: /tmp/mpm-harness-test.pid
    LogLevel: INFO
    ServerName: test.example
    MaintenanceInterval: 0.2
    MaxRequestWorkers: 90
    ThreadsPerChild: 20
    prefork:
      MinSpareServers: 2
      MaxSpareServers: 4
      MaxRequestWorkers: 12
    event:
      AsyncRequestWorkerFactor: 1.5
"""


def test_format_config_lines(in_tmp: Path) -> None:
    cfg = load_config("event", write(in_tmp, ROUND_TRIP_YAML))
    text = format_config(cfg)
    lines = text.splitlines()
    assert lines[0] == "# mpm-harness effective configuration: event MPM (threaded, async)"
    assert lines[1] == "# source: mpm.yaml"
    assert "# note: AH00513: MaxRequestWorkers of 90 is not an integer multiple of ThreadsPerChild of 20, " \
           "decreasing to nearest multiple 80, for a maximum of 4 servers." in lines
    directives = _directive_lines(text)
    for expected in [
        "Listen 127.0.0.1:0", "Listen [::1]:8081", "StartServers 3", "MinSpareThreads 75", "MaxSpareThreads 250",
        "ThreadsPerChild 20", "ThreadLimit 64", "MaxRequestWorkers 80", "ServerLimit 16",
        "MaxConnectionsPerChild 0", "AsyncRequestWorkerFactor 1.5", "KeepAlive On", "KeepAliveTimeout 1500ms",
        "MaxKeepAliveRequests 0", "Timeout 30",
        "RequestReadTimeout handshake=0 header=2.5-10,MinRate=100 body=0", "LimitRequestBody 1048576",
        "GracefulShutdownTimeout 3", "PidFile /tmp/mpm-harness-test.pid", "LogLevel info",
        "ServerName test.example", "MaintenanceInterval 200ms",
    ]:
        assert expected in directives
    assert not any(line.startswith(("MinSpareServers", "MaxSpareServers")) for line in directives)
    assert "# ErrorLog not set (stderr)" in lines


def test_format_config_prefork_shows_only_prefork_directives(in_tmp: Path) -> None:
    cfg = load_config("prefork", write(in_tmp, ROUND_TRIP_YAML))
    directives = _directive_lines(format_config(cfg))
    assert "MaxRequestWorkers 12" in directives
    assert "MinSpareServers 2" in directives
    assert not any(line.split()[0] in {"ThreadsPerChild", "ThreadLimit", "MinSpareThreads", "MaxSpareThreads",
                                       "AsyncRequestWorkerFactor"} for line in directives)
    assert "# note: mpm.yaml: ThreadsPerChild is not a prefork directive, ignored (it belongs to worker/event)" \
        in format_config(cfg).splitlines()


@pytest.mark.parametrize("mpm", MPMS)
def test_format_config_round_trip(in_tmp: Path, mpm: str) -> None:
    cfg = load_config(mpm, write(in_tmp, ROUND_TRIP_YAML))
    again = _reload(cfg)
    assert dataclasses.replace(again, source=cfg.source, notes=cfg.notes) == cfg
    # the clamps were already applied, so the reloaded config needs none
    assert again.notes == ()


@pytest.mark.parametrize("mpm", MPMS)
def test_format_config_round_trip_defaults(mpm: str) -> None:
    cfg = default_config(mpm)
    assert _reload(cfg) == cfg
    assert "# source: compiled-in defaults" in format_config(cfg)


def test_docs_cover_every_directive_and_show_real_output() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "config.md").read_text()
    missing = [name for name in DIRECTIVES if f"`{name}`" not in doc]
    assert missing == []
    assert format_config(default_config("event")) in doc
