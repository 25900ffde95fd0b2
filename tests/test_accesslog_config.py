"""LogFormat and CustomLog in the configuration: YAML and --set forms, errors, format_config, httpd.conf."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from servers.config import ConfigError, LogTarget, default_config, format_config, load_config, parse_override
from servers.external import apache
from servers.http.logformat import PREDEFINED
from servers.mpm.accesslog import canonical, keepalive_fields

from .test_config import in_tmp, write  # noqa: F401 - the fixture that runs a test in its tmp_path

COMBINED = PREDEFINED["combined"]


def overrides(*texts: str) -> dict:
    """What ``--set`` gives load_config (python -m servers keeps the last value of a name)."""
    return dict(parse_override(t) for t in texts)


def test_off_by_default() -> None:
    cfg = default_config("event")
    assert cfg.CustomLog is None
    assert dict(cfg.LogFormat) == dict(PREDEFINED)
    text = format_config(cfg)
    assert "# CustomLog not set (no access log)" in text.splitlines()
    assert "\nLogFormat " not in text and "\nCustomLog " not in text


def test_yaml_forms(in_tmp: Path) -> None:
    path = write(in_tmp, r"""
        LogFormat:
          timing: '%h %>s %D'                     # a mapping: nickname -> format, as written
        LogFormat: '"%h \"%r\" %b" quoted'        # httpd's two arguments; a second key adds to the first
        CustomLog:
          - logs/access.log combined              # httpd's arguments
          - {logs/timing.log: timing, logs/raw.log: '%h %U'}
        worker:
          CustomLog: stderr quoted
    """)
    cfg = load_config("worker", path)
    assert dict(cfg.LogFormat)["timing"] == "%h %>s %D"
    assert dict(cfg.LogFormat)["quoted"] == '%h "%r" %b'
    assert cfg.CustomLog == (
        LogTarget("logs/access.log", "combined", COMBINED),
        LogTarget("logs/timing.log", "timing", "%h %>s %D"),
        LogTarget("logs/raw.log", "%h %U", "%h %U"),
        LogTarget("stderr", "quoted", '%h "%r" %b'),
    )
    assert len(load_config("prefork", path).CustomLog) == 3  # the worker: section is the worker's


def test_set_forms() -> None:
    """--set takes httpd's arguments, a YAML flow list of them, or a flow mapping (also as the launcher passes it)."""
    cfg = load_config("prefork", overrides=overrides('LogFormat="%h %>s" short', "CustomLog=/tmp/a.log short"))
    assert cfg.CustomLog == (LogTarget("/tmp/a.log", "short", "%h %>s"),)
    cfg = load_config("prefork", overrides=overrides("CustomLog=[/tmp/a.log common, /dev/stderr '%h %D']"))
    assert [(t.path, t.format) for t in cfg.CustomLog] == [("/tmp/a.log", PREDEFINED["common"]), ("stderr", "%h %D")]
    cfg = load_config("prefork", overrides=overrides("CustomLog={/tmp/a.log: combined}",
                                                     "LogFormat={mine: '%h %>s'}"))
    assert cfg.CustomLog == (LogTarget("/tmp/a.log", "combined", COMBINED),)
    assert dict(cfg.LogFormat)["mine"] == "%h %>s"


def test_nicknames_resolve_whatever_the_order(in_tmp: Path) -> None:
    """A CustomLog may name a LogFormat defined after it, or in --set (mod_log_config resolves at open)."""
    path = write(in_tmp, "CustomLog: access.log late\nevent:\n  LogFormat: {late: '%h'}\n")
    assert load_config("event", path).CustomLog[0].format == "%h"
    cfg = load_config("prefork", path, overrides(r"LogFormat='%m' late"))
    assert cfg.CustomLog[0].format == "%m"
    cfg = load_config("prefork", overrides={"LogFormat": {"combined": "%h redefined"}, "CustomLog": "a.log combined"})
    assert cfg.CustomLog[0].format == "%h redefined"
    assert "LogFormat \"%h redefined\" combined" in format_config(cfg)


def test_custom_logs_accumulate_and_off_drops_them(in_tmp: Path) -> None:
    path = write(in_tmp, "CustomLog: a.log common\nCustomLog: b.log common\n")
    assert [t.path for t in load_config("event", path).CustomLog] == ["a.log", "b.log"]
    assert [t.path for t in load_config("event", path, overrides("CustomLog=c.log common")).CustomLog] == \
        ["a.log", "b.log", "c.log"]
    for off in ("CustomLog=Off", "CustomLog=", "CustomLog=none"):
        assert load_config("event", path, overrides(off)).CustomLog is None


@pytest.mark.parametrize("text, message", [
    ("LogFormat: '\"%h %Z\" bad'", r"mpm.yaml: LogFormat: Unrecognized LogFormat directive %Z in '%h %Z'"),
    ("LogFormat: {bad: '%{bogus}T'}", r"mpm.yaml: LogFormat: %\{bogus\}T: unknown argument 'bogus'"),
    ("LogFormat: '%h %>s'", r"mpm.yaml: LogFormat: LogFormat takes 1-2 arguments.*quote the format"),
    ("LogFormat: '\"%h %>s\"'", r"mpm.yaml: LogFormat: a LogFormat without a nickname sets TransferLog's format"),
    ("LogFormat: {'two words': '%h'}", r"mpm.yaml: LogFormat: nickname 'two words' must be one word"),
    ("LogFormat: '\"%h'", r"mpm.yaml: LogFormat: no closing \""),
    ("CustomLog: access.log combind", r"mpm.yaml: CustomLog: 'combind' is neither a LogFormat nickname nor a "
                                      r"format \(it has no % directive\) \(did you mean 'combined'\?\)"),
    ("CustomLog: access.log", r"mpm.yaml: CustomLog: CustomLog takes two or three arguments"),
    ("CustomLog: access.log '%h %Q'", r"mpm.yaml: CustomLog: Unrecognized LogFormat directive %Q"),
    ("CustomLog: '\"|/usr/bin/rotatelogs x 86400\" common'",
     r"mpm.yaml: CustomLog: '\|/usr/bin/rotatelogs x 86400': piped logs are not implemented"),
    ("CustomLog: access.log common env=!dontlog",
     r"mpm.yaml: CustomLog: 'env=!dontlog': conditional logging \(env=, expr=\) is not implemented"),
    ("CustomLog: 42", r"mpm.yaml: CustomLog: expected 'file format-or-nickname'"),
    ("prefork:\n  CustomLog: a.log '%{x}h'", r"mpm.yaml: prefork: CustomLog: %\{x\}h: %h takes no argument"),
])
def test_errors_name_the_file_and_the_directive(in_tmp: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("prefork", write(in_tmp, text + "\n"))


def test_an_unknown_nickname_names_the_file_of_its_customlog(in_tmp: Path) -> None:
    path = write(in_tmp, "LogFormat: {mine: '%h'}\n")
    with pytest.raises(ConfigError, match=r"^<overrides>: CustomLog: 'mien' is neither.*did you mean 'mine'"):
        load_config("event", path, overrides("CustomLog=a.log mien"))


def test_format_config_round_trip(in_tmp: Path) -> None:
    path = write(in_tmp, r"""
        LogFormat: {mine: '%h "%r" \n %{User-Agent}i', combined: '%h %b'}
        CustomLog:
          - '"/var/log/a b.log" mine'
          - stderr combined
          - c.log '%h %>s'
    """)
    cfg = load_config("event", path)
    lines = [line for line in format_config(cfg).splitlines() if line.startswith(("LogFormat", "CustomLog"))]
    assert lines == [
        'LogFormat "%h %b" combined',  # a predefined nickname keeps its place
        r'LogFormat "%h \"%r\" \\n %{User-Agent}i" mine',
        'CustomLog "/var/log/a b.log" mine',
        "CustomLog stderr combined",
        'CustomLog c.log "%h %>s"',
    ]
    # fed back one --set each (a name's last --set wins, so the logs go back as one list)
    formats = [parse_override(line.replace(" ", "=", 1))[1] for line in lines[:2]]
    logs = [parse_override(line.replace(" ", "=", 1))[1] for line in lines[2:]]
    again = load_config("event", overrides={"LogFormat": formats, "CustomLog": logs})
    assert (again.LogFormat, again.CustomLog) == (cfg.LogFormat, cfg.CustomLog)


def test_httpd_conf_lines(in_tmp: Path) -> None:
    cfg = load_config("event", overrides={"LogFormat": {"mine": '%h "%r"'},
                                          "CustomLog": ["rel/access.log mine", "stderr combined"]})
    conf = dict.fromkeys(["LogFormat", "CustomLog"])
    values = {name: [v for n, v in apache.directives(cfg) if n == name] for name in conf}
    # every nickname, the predefined ones too: httpd itself only knows CLF
    assert values["LogFormat"][:3] == [r'"%h %l %u %t \"%r\" %>s %b" CLF', r'"%h %l %u %t \"%r\" %>s %b" common',
                                       r'"%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"" combined']
    assert values["LogFormat"][-1] == r'"%h \"%r\"" mine'
    # httpd resolves a relative path against ServerRoot, we against the working directory: written absolute
    assert values["CustomLog"] == [f"{in_tmp / 'rel' / 'access.log'} mine", "/dev/stderr combined"]
    assert "CustomLog" not in {n for n, _ in apache.directives(default_config("event"))}


def test_frozen_and_comparable() -> None:
    cfg = load_config("prefork", overrides={"CustomLog": "a.log common"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.CustomLog[0].path = "b.log"  # type: ignore[misc]
    assert cfg == load_config("prefork", overrides={"CustomLog": ["a.log common"]})
    assert os.path.basename(cfg.CustomLog[0].path) == "a.log"


# -- what the writer derives: %v/%p and %k/%X as httpd computes them ------------------------------


@pytest.mark.parametrize("server_name, expected", [
    (None, (None, 80)), ("www.test", ("www.test", 80)), ("www.test:8080", ("www.test", 8080)),
    ("[::1]:81", ("[::1]", 81)), ("::1", ("::1", 80)),
])
def test_canonical_name_and_port(server_name, expected) -> None:
    assert canonical(server_name) == expected


@pytest.mark.parametrize("before, kept, max_requests, expected", [
    (0, True, 100, (0, "+")),     # first response, kept alive
    (1, True, 100, (1, "+")),     # the first keep-alive request after it
    (1, False, 100, (0, "-")),    # the client closes: httpd shows one less
    (0, False, 100, (0, "-")),
    (1, True, 2, (1, "-")),       # the last continuation MaxKeepAliveRequests 2 allows: already "-"
    (2, False, 2, (2, "-")),      # refused at the limit: counted again
    (5, True, 0, (5, "+")),       # MaxKeepAliveRequests 0: unlimited
])
def test_keepalive_fields_follow_httpd(before: int, kept: bool, max_requests: int, expected) -> None:
    assert keepalive_fields(before, kept, max_requests) == expected
