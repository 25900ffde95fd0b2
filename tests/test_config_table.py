"""The directive table declares each directive once: its defaults, fields, format_config and httpd.conf lines."""

from __future__ import annotations

import dataclasses

import pytest

from servers.config import DIRECTIVES, MPMS, PerMPM, ServerConfig, default_config, format_config, load_config
from servers.external import apache

#: the optional directives set and the testing knobs on, so format_config writes every line it can
EVERYTHING_SET = {"PidFile": "/run/x/x.pid", "ErrorLog": "/run/x/error.log", "ServerName": "x.test",
                  "LogFormat": '"%h %>s" mine', "CustomLog": "/run/x/access.log mine",
                  "BenchCPUWorkMicroseconds": 1, "BenchBallastMiB": 1}
KNOBS = {"MaintenanceInterval", "BenchCPUWorkMicroseconds", "BenchBallastMiB", "StatusLocation", "StatusRequire"}


def _written(text: str) -> set[str]:
    return {line.split()[0] for line in text.splitlines() if line and not line.startswith("#")}


def _applies(mpm: str) -> set[str]:
    return {name for name, d in DIRECTIVES.items() if mpm in d.mpms}


def test_server_config_fields_are_the_table_in_its_order() -> None:
    assert [f.name for f in dataclasses.fields(ServerConfig)] == ["mpm", *DIRECTIVES, "source", "notes"]


@pytest.mark.parametrize("mpm", MPMS)
def test_every_directive_has_a_default_for_each_mpm_it_applies_to(mpm: str) -> None:
    cfg = default_config(mpm)
    assert cfg.notes == ()  # httpd's defaults need no clamp
    for d in DIRECTIVES.values():
        if isinstance(d.default, PerMPM):
            assert set(d.default) == set(d.mpms), d.name
        if mpm not in d.mpms:
            assert d.neutral is not None, f"{d.name} needs a neutral value for {mpm}"
        assert getattr(cfg, d.name) == d.default_for(mpm), d.name


@pytest.mark.parametrize("mpm", MPMS)
def test_every_directive_of_the_mpm_appears_in_format_config(mpm: str) -> None:
    assert _written(format_config(load_config(mpm, overrides=EVERYTHING_SET))) == _applies(mpm)
    defaults = format_config(default_config(mpm)).splitlines()
    for d in DIRECTIVES.values():
        if d.unset is not None:
            assert f"# {d.name} not set ({d.unset})" in defaults


@pytest.mark.parametrize("mpm", MPMS)
def test_httpd_conf_holds_every_httpd_directive_of_the_mpm(mpm: str) -> None:
    cfg = load_config(mpm, overrides={"Listen": "127.0.0.1:0", **EVERYTHING_SET})
    text = apache.render_conf(
        cfg, listen=[("127.0.0.1", 8099)], run_dir="/run/x", pidfile="/run/x/x.pid", error_log="/run/x/error.log",
        docroot="/run/x/htdocs", bytes_dir="/cache/bytes", modules="/mods", mpm_load="",
    )
    ours = _written(text) & set(DIRECTIVES)
    assert ours == _applies(mpm) - KNOBS
    assert apache.MAPPED == set(DIRECTIVES) - KNOBS


def test_httpd_conf_writes_the_status_location_in_httpds_own_form() -> None:
    conf = dict(listen=[("127.0.0.1", 8099)], run_dir="/run/x", pidfile="/run/x/x.pid", error_log="/run/x/e.log",
                docroot="/run/x/htdocs", bytes_dir="/cache/bytes", modules="/mods", mpm_load="")
    cfg = load_config("event", overrides={"StatusLocation": "/st", "StatusRequire": "local; ip 10.0.0.0/8"})
    text = apache.render_conf(cfg, **conf)
    assert '<Location "/st">\n    SetHandler server-status\n    Require local\n    Require ip 10.0.0.0/8\n' in text
    assert "LoadModule authz_host_module" in text  # Require local / ip live in mod_authz_host
    assert apache.not_applied(cfg, {"StatusLocation": "/st", "StatusRequire": "local"}) == {}
    off = apache.render_conf(load_config("event", overrides={"StatusLocation": "Off"}), **conf)
    assert "SetHandler server-status" not in off


def test_httpd_conf_writes_the_scoreboard_sizes_first() -> None:
    names = [name for name, _ in apache.directives(default_config("event"))]
    assert names[:3] == ["ServerLimit", "ThreadLimit", "StartServers"]
    assert names[-1] == "ExtendedStatus"
    assert [name for name, _ in apache.directives(default_config("prefork"))][:2] == ["ServerLimit", "StartServers"]
