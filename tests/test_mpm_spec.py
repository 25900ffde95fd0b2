"""The MPM interface (servers.mpm.spec): each MPM's facts as httpd's ap_mpm_query and *_run code give them."""

from __future__ import annotations

import pytest

from servers.config import load_config
from servers.mpm import MPM_NAMES, MPMS, get_mpm


def test_the_mpms_are_declared_once_in_httpds_order():
    assert MPM_NAMES == ("prefork", "worker", "event")
    assert [(s.threaded, s.asynchronous) for s in MPMS.values()] == [(False, False), (True, False), (True, True)]


def test_get_mpm_refuses_an_unknown_name_and_loads_the_child_loop():
    with pytest.raises(ValueError, match="unknown MPM 'beos'"):
        get_mpm("beos")
    for name in MPM_NAMES:
        assert callable(get_mpm(name).load_child())


def test_worker_sizing_follows_httpd():
    spec = MPMS["worker"]
    cfg = load_config("worker", overrides={"ThreadsPerChild": 25, "MaxRequestWorkers": 130, "ServerLimit": 16})
    assert cfg.MaxRequestWorkers == 125  # rounded down to a multiple of ThreadsPerChild
    assert spec.process_limit(cfg) == 5
    assert spec.threads_per_child(cfg) == 25
    assert spec.spare_limits(cfg) == (cfg.MinSpareThreads, cfg.MaxSpareThreads)
    assert spec.scoreboard_threads(cfg) == max(25, cfg.ThreadLimit)
    assert spec.slot_scan_limit(cfg) == 16  # ServerLimit: old generations may hold slots
    small = load_config("worker", overrides={"ThreadsPerChild": 2, "MaxRequestWorkers": 40, "ServerLimit": 4})
    assert spec.process_limit(small) == 4  # clamped to ServerLimit


def test_prefork_counts_processes():
    spec = MPMS["prefork"]
    cfg = load_config("prefork", overrides={"MaxRequestWorkers": 12, "MinSpareServers": 2, "MaxSpareServers": 4})
    assert spec.process_limit(cfg) == 12
    assert spec.threads_per_child(cfg) == 1
    assert spec.scoreboard_threads(cfg) == 1
    assert spec.spare_limits(cfg) == (2, 4)
    assert spec.slot_scan_limit(cfg) == 12  # MaxRequestWorkers slots
    assert spec.at_capacity(cfg, busy_threads=0, live_processes=12)
    assert not spec.at_capacity(cfg, busy_threads=99, live_processes=11)


def test_threaded_capacity_counts_busy_threads():
    cfg = load_config("event", overrides={"ThreadsPerChild": 4, "MaxRequestWorkers": 8})
    spec = MPMS["event"]
    assert spec.at_capacity(cfg, busy_threads=8, live_processes=1)
    assert not spec.at_capacity(cfg, busy_threads=7, live_processes=99)


@pytest.mark.parametrize("name, codes, text", [
    ("prefork", ("AH00161", None, "AH00162"),
     "server seems busy, (you may need to increase StartServers, or Min/MaxSpareServers), spawning 8 children, "
     "there are 3 idle, and 5 total children"),
    ("worker", ("AH00286", "AH00287", "AH00289"),
     "server seems busy, (you may need to increase StartServers, ThreadsPerChild or Min/MaxSpareThreads), "
     "spawning 8 children, there are around 3 idle threads, and 5 total children"),
    ("event", ("AH00484", "AH10159", "AH00486"),
     "server seems busy, (you may need to increase StartServers, ThreadsPerChild or Min/MaxSpareThreads), "
     "spawning 8 children, there are around 3 idle threads, 5 active children, and 0 children that are "
     "shutting down"),
])
def test_log_codes_and_busy_text_are_httpds(name, codes, text):
    spec = MPMS[name]
    assert (spec.maxclients_code, spec.near_maxclients_code, spec.busy_code) == codes
    assert spec.busy_message(8, 3, 5) == text
