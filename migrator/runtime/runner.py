"""Start a run and follow it: a driver child process, or a Ray Job followed over HTTP.

Either way the driver is ``migrator.runtime.launch`` with ``--events``; its output is read line
by line, events go to ``on_event`` (progress) and everything else to ``on_line`` (the log), and
the last event is the run's summary. Nothing heavy is imported here; the Jobs path imports
``ray.job_submission`` only when it is used.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from migrator.runtime import events as ev
from migrator.runtime import privacy

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds `migrator/`
Handler = Callable[[dict[str, Any]], None]
LineHandler = Callable[[str], None]


@dataclass
class RunOptions:
    num_workers: int | None = None
    use_gpu: bool | None = None
    gpus_per_worker: float | None = None
    resources_per_worker: str | None = None  # JSON
    storage_path: str | None = None
    max_steps: int | None = None
    seed: int | None = None
    standins: bool = False
    check_checkpoint: bool = False
    num_cpus: int | None = None
    pickle_warn_mb: float | None = None
    same_sampler: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)

    def launch_flags(self) -> list[str]:
        flags: list[str] = ["--events"]
        if self.num_workers is not None:
            flags += ["--num-workers", str(self.num_workers)]
        if self.use_gpu is not None:
            flags.append("--gpu" if self.use_gpu else "--cpu")
        if self.gpus_per_worker is not None:
            flags += ["--gpus-per-worker", repr(self.gpus_per_worker)]
        if self.resources_per_worker:
            flags += ["--resources-per-worker", self.resources_per_worker]
        if self.storage_path is not None:
            flags += ["--storage-path", self.storage_path]
        if self.max_steps is not None:
            flags += ["--max-steps", str(self.max_steps)]
        if self.seed is not None:
            flags += ["--seed", str(self.seed)]
        if self.standins:
            flags.append("--offline-standins")
        if self.check_checkpoint:
            flags.append("--check-checkpoint")
        if self.num_cpus is not None:
            flags += ["--num-cpus", str(self.num_cpus)]
        if self.same_sampler:
            flags.append("--same-sampler")
        if self.pickle_warn_mb is not None:
            flags += ["--pickle-warn-mb", repr(self.pickle_warn_mb)]
        return flags


@dataclass
class Outcome:
    summary: dict[str, Any] | None
    returncode: int
    output_tail: list[str]
    mode: str
    job_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.summary is not None and bool(self.summary.get("ok"))


def is_jobs_address(address: str | None) -> bool:
    return bool(address) and address.startswith(("http://", "https://"))


def child_env(address: str | None, extra: dict[str, str] | None = None, pythonpath: list[str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if not address:
        # The run starts a cluster of its own: token authentication on, explicitly (which also
        # quiets Ray's notice), see migrator.runtime.privacy. An existing cluster's settings are
        # the user's: their environment goes through as it is.
        privacy.private_env(env)
    paths = [str(PACKAGE_ROOT), *(pythonpath or []), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    if address:
        env["RAY_ADDRESS"] = address
    else:
        env.pop("RAY_ADDRESS", None)
    env.update(extra or {})
    return env


def _consume(line: str, on_event: Handler, on_line: LineHandler, box: dict[str, Any], tail: list[str]) -> None:
    event = ev.parse(line)
    if event is None:
        text = line.rstrip("\n")
        on_line(text)
        tail.append(text)
        del tail[:-200]
    elif event.get("kind") == "summary":
        box["summary"] = event.get("summary")
    else:
        on_event(event)


def run_module(module: str, script: str, flags: list[str], script_args: list[str], *, cwd: str | None,
               env: dict[str, str], on_event: Handler, on_line: LineHandler, timeout_s: float | None = None,
               warm: "WarmInterpreter | None" = None) -> Outcome:
    """Run ``python -m MODULE SCRIPT FLAGS -- ARGS`` and follow its output: in a child of ``warm``
    if it takes the run, else in a fresh interpreter."""
    if warm is not None:
        outcome = warm.run(module, [script, *flags, "--", *script_args], cwd=cwd, env=env, on_event=on_event,
                           on_line=on_line, timeout_s=timeout_s)
        if outcome is not None:
            return outcome
    command = [sys.executable, "-m", module, script, *flags, "--", *script_args]
    box: dict[str, Any] = {"summary": None}
    tail: list[str] = []
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, errors="replace", bufsize=1)
    stopped = _stop_after(timeout_s, process.pid)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            _consume(line, on_event, on_line, box, tail)
        code = process.wait(timeout=60)
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        raise
    finally:
        stopped.cancel()
    return _outcome(box, code, tail, env, stopped, timeout_s)


def _outcome(box: dict[str, Any], code: int, tail: list[str], env: dict[str, str], stopped: "_Stopper",
             timeout_s: float | None) -> Outcome:
    """A local run's outcome: fresh or forked from the warm interpreter, the same."""
    if stopped.fired:
        tail.append(f"(stopped: ran past {timeout_s:.0f} s)")
    return Outcome(box["summary"], code, tail, mode="local" if "RAY_ADDRESS" not in env else "address")


class WarmInterpreter:
    """``migrator.runtime.warm``, started now so that its imports run while other things happen
    (``migrate validate`` starts it beside its cluster), or one already serving on a Unix socket
    (``attach``); ``run`` forks a run from it."""

    def __init__(self, scripts: list[str], *, env: dict[str, str], cwd: str, standins: bool = False) -> None:
        command = [sys.executable, "-m", "migrator.runtime.warm", *scripts, *(["--offline-standins"] if standins else [])]
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
        self._begin(process.stdin, process.stdout, process=process)

    def _begin(self, requests: Any, answers: Any, *, process: subprocess.Popen | None = None, connection: Any = None,
               shared: str | None = None) -> None:
        """Requests go to ``requests``, events and the runs' output come from ``answers``: the
        pipes of ``process``, or the two sides of ``connection``."""
        self.imported: list[str] | None = None  # once ready
        self.runs = 0
        self.refusals: list[str] = []
        self.shared = shared  # the socket attached to
        self._broken = False
        self._process, self._socket = process, connection
        self._requests, self._answers = requests, answers

    @classmethod
    def attach(cls, path: str, timeout_s: float = 5) -> "WarmInterpreter | None":
        """The warm interpreter serving on the Unix socket ``path`` (``warm --listen``), or None."""
        import socket

        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.settimeout(timeout_s)
            connection.connect(path)
            connection.settimeout(None)
        except OSError:
            connection.close()
            return None
        attached = cls.__new__(cls)
        attached._begin(connection.makefile("w", encoding="utf-8"),
                        connection.makefile("r", encoding="utf-8", errors="replace"), connection=connection, shared=path)
        return attached

    def _next_event(self) -> dict[str, Any] | None:
        """The server's next ``warm`` event, skipping anything else; None once it has gone."""
        for line in self._answers:
            event = ev.parse(line)
            if event is not None and event.get("kind") == "warm":
                return event
        self._broken = True
        return None

    def _ready(self) -> bool:
        if self.imported is None and not self._broken:
            event = self._next_event()
            if event is not None and event.get("state") == "ready":
                self.imported = list(event.get("imported") or [])
        return self.imported is not None and not self._broken

    def _ask(self, request: dict[str, Any]) -> dict[str, Any] | None:
        try:
            self._requests.write(json.dumps(request) + "\n")
            self._requests.flush()
        except OSError:
            self._broken = True
            return None
        return self._next_event()

    def accepts(self, env: dict[str, str], cwd: str, standins: bool = False) -> bool:
        """Whether it would take a run with this environment and working directory."""
        if not self._ready():
            return False
        answer = self._ask({"probe": True, "env": env, "cwd": cwd, "standins": standins})
        if answer is not None and answer.get("state") == "refused":
            self.refusals.append(str(answer.get("why")))
        return answer is not None and answer.get("state") == "accepted"

    def run(self, module: str, argv: list[str], *, cwd: str | None, env: dict[str, str], on_event: Handler,
            on_line: LineHandler, timeout_s: float | None = None) -> Outcome | None:
        """The run's outcome, or None when the server cannot take it (then run it afresh)."""
        if not self._ready():
            return None
        answer = self._ask({"module": module, "argv": argv, "env": env, "cwd": cwd or os.getcwd()})
        if answer is None or answer.get("state") != "started":
            if answer is not None:
                self.refusals.append(str(answer.get("why")))
            return None
        self.runs += 1
        pid = int(answer["pid"])
        box: dict[str, Any] = {"summary": None}
        tail: list[str] = []
        stopped = _stop_after(timeout_s, pid)
        code = None
        try:
            for line in self._answers:
                event = ev.parse(line)
                if event is not None and event.get("kind") == "warm":
                    code = int(event.get("code", 1))
                    break
                _consume(line, on_event, on_line, box, tail)
        except KeyboardInterrupt:
            _signal(pid, signal.SIGTERM)
            self.close()
            raise
        finally:
            stopped.cancel()
        if code is None:  # the server went away mid-run
            self._broken = True
            code = self._process.wait(timeout=60) if self._process is not None else 1
        return _outcome(box, code, tail, env, stopped, timeout_s)

    def close(self) -> None:
        if self._socket is not None:  # the server's process for this connection ends with it
            for stream in (self._requests, self._answers, self._socket):
                with contextlib.suppress(OSError):
                    stream.close()
            return
        assert self._process is not None
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                self._requests.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._answers is not None:
            self._answers.close()


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, sig)


class _Stopper(threading.Timer):
    """SIGTERM to a run still going after its time (whether or not it prints anything)."""

    fired = False

    def __init__(self, timeout_s: float | None, pid: int) -> None:
        super().__init__(timeout_s or 0, self._stop, args=(pid,))
        self.daemon = True

    def _stop(self, pid: int) -> None:
        self.fired = True
        _signal(pid, signal.SIGTERM)


def _stop_after(timeout_s: float | None, pid: int) -> _Stopper:
    stopper = _Stopper(timeout_s, pid)
    if timeout_s:
        stopper.start()
    return stopper


def submit_job(address: str, script: str, flags: list[str], script_args: list[str], *, on_event: Handler,
               on_line: LineHandler, env_vars: dict[str, str] | None = None, poll_s: float = 1.0) -> Outcome:
    """Submit ``launch`` as a Ray Job (the script's folder as ``working_dir``) and follow its logs."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    path = Path(script).resolve()
    entrypoint = shlex.join(["python", "-m", "migrator.runtime.launch", path.name, *flags, "--", *script_args])
    runtime_env = {
        "working_dir": str(path.parent),
        "py_modules": [str(PACKAGE_ROOT / "migrator")],  # the cluster needs no `migrate` installed
        "env_vars": {"PYTHONUNBUFFERED": "1", **(env_vars or {})},
    }
    client = JobSubmissionClient(address)
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env)
    on_line(f"migrate: submitted Ray Job {job_id} to {address}")
    box: dict[str, Any] = {"summary": None}
    tail: list[str] = []
    consumed = 0
    terminal = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}
    try:
        while True:
            status = client.get_job_status(job_id)
            logs = client.get_job_logs(job_id)
            done = status in terminal
            end = len(logs) if done else logs.rfind("\n", consumed) + 1
            if end > consumed:
                for line in logs[consumed:end].splitlines():
                    _consume(line, on_event, on_line, box, tail)
                consumed = end
            if done:
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        client.stop_job(job_id)
        raise
    info = client.get_job_info(job_id)
    if status != JobStatus.SUCCEEDED and info.message:
        tail.append(f"Ray Job {job_id} {status}: {info.message}")
    return Outcome(box["summary"], 0 if status == JobStatus.SUCCEEDED else 1, tail, mode="job", job_id=job_id)
