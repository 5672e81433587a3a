"""A warm fork server for job runners, so a job starts in milliseconds instead of ~300 ms.

Starting a runner as a fresh interpreter costs the interpreter plus its imports (SQLAlchemy alone
is ~200 ms). The zygote is a small single-threaded process that has imported the runner once and
forks a child per job; the child takes the caller's environment and the job's liveness-lock
descriptor (passed over a Unix socket), detaches, and runs exactly what
``python -m forgeml.executors.local_worker`` would. The first job of a session starts the zygote in
the background and runs the slow way; later jobs use it. It exits after sitting idle.

The socket lives in a private folder (mode 0700) under the system temp folder, named by a hash of
the interpreter and forgeml's code, so an upgraded or edited forgeml gets a fresh zygote.
"""

from __future__ import annotations

import array
import fcntl
import functools
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

IDLE_SECONDS = 600.0
CONNECT_TIMEOUT = 0.5


@functools.cache
def code_stamp() -> str:
    """Changes whenever the interpreter or any forgeml module changes.

    Computed once per process: a process runs the code it imported, so its runners must too.
    """
    package = Path(__file__).resolve().parents[1]
    newest = max((p.stat().st_mtime_ns for p in package.rglob("*.py")), default=0)
    raw = f"{sys.executable}|{package}|{newest}"
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def socket_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / f"forgeml-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise PermissionError(f"{folder} must be owned by this user with mode 0700")
    return folder


def socket_path(stamp: str | None = None) -> Path:
    return socket_dir() / f"zygote-{stamp or code_stamp()}.sock"


def request_launch(kind: str, job_name: str, lock_fd: int, env: dict[str, str], log_path: Path) -> int | None:
    """Ask a running zygote to start the job's runner; None when no zygote answers."""
    path = socket_path()
    if not path.exists():
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(CONNECT_TIMEOUT)
    try:
        client.connect(str(path))
        payload = json.dumps({"kind": kind, "job": job_name, "env": env, "log": str(log_path)}).encode()
        socket.send_fds(client, [len(payload).to_bytes(4, "big") + payload], [lock_fd])
        reply = client.recv(64)
        return int(json.loads(reply.decode())["pid"]) if reply else None
    except (OSError, ValueError, KeyError):
        return None
    finally:
        client.close()


def shutdown() -> bool:
    """Ask the zygote for the current code to exit (running jobs are unaffected)."""
    path = socket_path()
    if not path.exists():
        return False
    with open(os.devnull) as placeholder:  # the protocol always carries one descriptor
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(CONNECT_TIMEOUT)
        try:
            client.connect(str(path))
            payload = json.dumps({"shutdown": True}).encode()
            socket.send_fds(client, [len(payload).to_bytes(4, "big") + payload], [placeholder.fileno()])
            client.recv(8)
            return True
        except OSError:
            return False
        finally:
            client.close()


def start_in_background() -> None:
    """Start a zygote for this code stamp; a second one started at the same time just exits."""
    subprocess.Popen(
        [sys.executable, "-m", "forgeml.executors.zygote"], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
    )


def _recv_request(conn: socket.socket) -> tuple[dict[str, object], int]:
    fds = array.array("i")
    data, ancillary, _flags, _addr = conn.recvmsg(1 << 20, socket.CMSG_LEN(fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    size = int.from_bytes(data[:4], "big")
    while len(data) < size + 4:
        more = conn.recv(1 << 20)
        if not more:
            break
        data += more
    return json.loads(data[4 : 4 + size].decode()), fds[0]


def _run_child(request: dict[str, object], lock_fd: int) -> None:
    """In the forked child: become the job's runner, as local_worker would, then exit."""
    code = 1
    try:
        os.setsid()
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        log = os.open(str(request["log"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in dict(request["env"]).items()})  # type: ignore[call-overload]
        os.environ["FORGEML_JOB_LOCK_FD"] = str(lock_fd)
        from forgeml.executors import local_worker

        code = local_worker.main(str(request["kind"]), str(request["job"]))
    except BaseException:  # the runner reports job errors itself; this is a last resort
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    stamp = code_stamp()
    path = socket_path(stamp)
    guard = open(path.with_suffix(".lock"), "a+")  # noqa: SIM115 - held for the zygote's life
    try:
        fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another zygote for this code already serves
    import forgeml.executors.local_worker  # noqa: F401 - the point: import once, fork many

    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(64)
    server.settimeout(IDLE_SECONDS)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    try:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                return
            with conn:
                try:
                    request, lock_fd = _recv_request(conn)
                except (OSError, ValueError, IndexError):
                    continue
                if request.get("shutdown"):
                    os.close(lock_fd)
                    return
                pid = os.fork()
                if pid == 0:
                    server.close()
                    conn.close()
                    guard.close()  # the zygote's own lock must not outlive the zygote
                    _run_child(request, lock_fd)
                os.close(lock_fd)
                conn.sendall(json.dumps({"pid": pid}).encode())
    finally:
        path.unlink(missing_ok=True)
        server.close()


if __name__ == "__main__":
    serve()
