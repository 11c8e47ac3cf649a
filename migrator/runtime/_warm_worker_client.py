"""The interpreter a warm-worker cluster's raylet starts: hands the start to the fork server, or runs Python.

``migrator.runtime.warm_workers`` gives the raylet a small shell script as its Python. The script
runs this file with ``python -S`` (standard library only: it must start in milliseconds), with
the server's socket and the real interpreter before the raylet's arguments:

    python -S _warm_worker_client.py SOCKET PYTHON ARG...

For a Python worker (``setup_worker.py ...``) it sends the arguments, the environment, the
working directory and its stdin, stdout and stderr to the server, which forks a child that
becomes the worker. This process stays as the one the raylet started: it passes SIGTERM and
SIGINT on to the child and exits as the child did; if it is killed, the child notices and exits.
Anything else (the dashboard and the other daemons ``ray start`` launches with this
"interpreter"), a refused request, or a server that does not answer: ``exec PYTHON ARG...``, as if
the raylet had started Python itself.
"""

import json
import os
import signal
import socket
import struct
import sys


def _fresh(python: str, args: list) -> None:
    os.execv(python, [python, *args])


def _read_line(conn: socket.socket, pending: bytearray) -> bytes:
    while b"\n" not in pending:
        chunk = conn.recv(4096)
        if not chunk:
            return b""
        pending.extend(chunk)
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return line


def main() -> None:
    path, python, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if not args or os.path.basename(args[0]) != "setup_worker.py":
        _fresh(python, args)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        body = json.dumps({"argv": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
        socket.send_fds(conn, [struct.pack("!I", len(body))], [0, 1, 2])
        conn.sendall(body)
        pending = bytearray()
        reply = json.loads(_read_line(conn, pending) or b"{}")
    except (OSError, ValueError):
        reply = {}
    child = reply.get("pid")
    if not child:  # refused, or no server: the raylet's own start
        conn.close()
        _fresh(python, args)

    def forward(signum, _frame):
        try:
            os.kill(child, signum)
        except OSError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        done = json.loads(_read_line(conn, pending) or b"{}")
    except (OSError, ValueError):
        done = {}
    code = done.get("exit", 1)
    if code < 0:  # killed by a signal: so is this process
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main()
