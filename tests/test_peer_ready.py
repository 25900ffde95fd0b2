"""``servers.external.peer.wait_for_app``: the one "ready when GET / answers below 500" loop of
the app servers (PeerHandle) and httpd + mod_wsgi (ModWsgiHandle), on a handle whose answers,
process and log the test scripts (no server started)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from servers.external.modwsgi import app_failure
from servers.external.peer import wait_for_app
from servers.launcher import Handle, LaunchError


class FakeProc:
    """The part of Popen the loop reads: poll() and returncode."""

    def __init__(self) -> None:
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


@dataclass
class Scripted(Handle):
    """A handle whose GET / answers are scripted: an int is a status, an exception is raised."""

    answers: list = field(default_factory=list)
    asked: int = 0

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        self.asked += 1
        answer = self.answers.pop(0) if self.answers else 500
        if isinstance(answer, BaseException):
            raise answer
        return answer, b""


def scripted(tmp_path, answers, log: str = "") -> Scripted:
    log_path = tmp_path / "error.log"
    log_path.write_text(log)
    return Scripted(name="peer-x", proc=FakeProc(), run_dir=str(tmp_path), log_path=str(log_path),
                    pidfile=str(tmp_path / "x.pid"), url="http://127.0.0.1:1", answers=list(answers),
                    _own_run_dir=False)


def test_ready_once_an_answer_is_below_500(tmp_path):
    h = scripted(tmp_path, [ConnectionRefusedError(), 503, 500, 404])
    wait_for_app(h, time.monotonic() + 30, server="x")
    assert h.asked == 4 and h.answers == []


def test_a_server_that_exits_fails_naming_it_with_the_log_tail(tmp_path):
    h = scripted(tmp_path, [500], log="worker failed to boot\n")
    h.proc.returncode = 3
    with pytest.raises(LaunchError, match=r"peer-x: x exited \(status 3\) before the app answered\n"
                                          r"worker failed to boot"):
        wait_for_app(h, time.monotonic() + 30, server="x")


def test_the_deadline_fails_with_the_log_tail(tmp_path):
    h = scripted(tmp_path, [], log="still importing\n")
    with pytest.raises(LaunchError, match=r"never answered GET / below 500.*\nstill importing"):
        wait_for_app(h, time.monotonic() + 0.2, server="x")
    assert h.asked >= 1


def test_a_failure_found_in_the_log_fails_at_once(tmp_path):
    log = ("[wsgi:error] mod_wsgi (pid=1): Failed to exec Python script file '/r/app.wsgi'. WSGI0110\n"
           "[wsgi:error] ModuleNotFoundError: No module named 'nope'\n")
    h = scripted(tmp_path, [500] * 100, log=log)
    with pytest.raises(LaunchError, match="the app did not load: ModuleNotFoundError: No module named 'nope'"):
        wait_for_app(h, time.monotonic() + 30, server="httpd", failure=app_failure)
    assert h.asked == 1
