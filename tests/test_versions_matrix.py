"""The built-in ``versions`` matrix: our three MPMs on Python 3.11, 3.12 and 3.13, sized as ``sweep``,
each version's interpreter from ``$MPM_PYTHON_3_1x`` or ``python3.1x`` on PATH (docs/harness.md)."""

from __future__ import annotations

from harness.matrix import load_matrix

VERSIONS = ("3.11", "3.12", "3.13")
MPMS = ("prefork", "worker", "event")


def env_name(version: str) -> str:
    return f"MPM_PYTHON_{version.replace('.', '_')}"


def test_each_mpm_on_each_version_sized_as_the_sweep(monkeypatch):
    for v in VERSIONS:
        monkeypatch.delenv(env_name(v), raising=False)
    m = load_matrix("versions")
    sweep = {s.server: s.set for s in load_matrix("sweep").servers}
    assert [s.label for s in m.servers] == [f"{mpm}-{v}" for v in VERSIONS for mpm in MPMS]
    for s in m.servers:
        mpm, version = s.label.split("-")
        assert s.server == mpm and s.set == sweep[mpm]
        assert s.python == f"python{version}"  # the default: the name on PATH


def test_the_environment_points_each_version_at_its_interpreter(monkeypatch, tmp_path):
    for v in VERSIONS:
        monkeypatch.setenv(env_name(v), str(tmp_path / f"venv{v}/bin/python"))
    m = load_matrix("versions")
    for s in m.servers:
        assert s.python == str(tmp_path / f"venv{s.label.split('-')[1]}/bin/python")


def test_each_newer_version_is_compared_with_the_same_mpm_on_311():
    m = load_matrix("versions")
    assert m.peers == {f"{mpm}-{v}": (f"{mpm}-3.11",) for v in VERSIONS[1:] for mpm in MPMS}
    assert m.trials == 3 and m.suites == ()
    assert {p.name: p.get("connections") for p in m.profiles} == {"hello-c8": 8, "hello-c64": 64,
                                                                  "idle-keepalive": 50}


def test_its_plan_fits_the_documented_budget():
    """A plan, not a measurement: 9 servers x 3 trials of (start, warm-up, each profile with its quiet check)."""
    m = load_matrix("versions")
    per_trial = 3 + m.warmup + sum(p.duration + m.quiet_seconds + 1 for p in m.profiles)
    assert len(m.servers) * m.trials * per_trial < 8 * 60
