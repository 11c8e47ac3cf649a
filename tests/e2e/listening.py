"""What a run's Ray processes listen on, measured while the run goes on: the privacy checks of
``test_private_clusters.py`` and of the runs that start a cluster of their own (``migrate run``
with no address, ``migrate validate`` with none, an AIR-era original's local Ray).

A test marks what it starts by the ``HOME`` it gives the command: every process started from
there inherits it, Ray's daemons included, whichever session or parent they end up in.
"""

from __future__ import annotations

import ipaddress
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import psutil

Socket = tuple[str, str, int, bool]  # process name, address, port, token authentication on


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def listening(pids: set[int]) -> set[Socket]:
    """Each listening TCP socket of ``pids``."""
    found = set()
    for pid in pids:
        try:
            process = psutil.Process(pid)
            env = process.environ()
            auth = env.get("RAY_AUTH_MODE", "").lower() == "token" and bool(
                env.get("RAY_AUTH_TOKEN") or env.get("RAY_AUTH_TOKEN_PATH"))
            for conn in process.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((process.name(), conn.laddr.ip, conn.laddr.port, auth))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def assert_private(sockets: set[Socket]) -> None:
    names = {name for name, *_ in sockets}
    assert {"gcs_server", "raylet"} <= names, sockets  # the cluster was measured, not just anything
    exposed = [s for s in sockets if not is_loopback(s[1])]
    assert all(auth for *_, auth in exposed), f"listening beyond loopback without token authentication: {exposed}"


def started_with_home(home: str) -> Callable[[], set[int]]:
    """The processes whose environment (as they were started) has ``HOME=home``; each process's
    environment is read once."""
    verdicts: dict[tuple[int, float], bool] = {}

    def pids() -> set[int]:
        found = set()
        for process in psutil.process_iter(["create_time"]):
            key = (process.pid, process.info["create_time"])
            if key not in verdicts:
                try:
                    verdicts[key] = process.environ().get("HOME") == home
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
            if verdicts[key]:
                found.add(process.pid)
        return found

    return pids


@contextmanager
def watching(pids: Callable[[], set[int]], every_s: float = 0.5) -> Iterator[set[Socket]]:
    """Every listening socket ``pids()`` had at any poll while the block ran (a cluster's agents
    come up seconds after it starts, and a run's cluster is gone when it ends)."""
    seen: set[Socket] = set()
    done = threading.Event()

    def poll() -> None:
        while True:
            seen.update(listening(pids()))
            if done.wait(every_s):
                return

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join()


def alive(pids: set[int]) -> list[str]:
    """The names of those of ``pids`` still running (a zombie waits only for its parent's wait)."""
    names = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE:
                names.append(f"{process.name()} ({pid})")
        except psutil.Error:
            continue
    return names
