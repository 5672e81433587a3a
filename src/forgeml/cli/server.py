"""``forgeml server``: serve SageMaker's API, the runtime, job logs and the S3/STS subset over HTTP.

The socket is bound before serving, so ``--port 0`` works and the printed URL is the real one.
With ``--workers N`` (N > 1) uvicorn runs N processes on that one socket, each building its app
from the environment (``forgeml.server.app:app_from_env``). SIGTERM or SIGINT stops accepting,
lets requests in flight finish (up to 30 s) and exits; the metadata store writes each record in one
transaction, so a stop at any moment leaves no record half-written.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import forgeml

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
GRACEFUL_SHUTDOWN_SECONDS = 30
#: the model has 60 s per request; keep client connections a little longer than that
KEEP_ALIVE_SECONDS = 75


def add_server_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "server", help="serve SageMaker's API, endpoints' runtime, job logs and S3/STS to boto3 and the sagemaker SDK")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (0 picks a free one)")
    parser.add_argument("--workers", type=int, default=1, help="server processes sharing the socket")
    parser.add_argument("--no-auth", action="store_true",
                        help="accept unsigned requests (local development only: loopback addresses only)")
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS,
                        help="level of the request log (one line per request at info)")
    parser.set_defaults(func=cmd_server)
    return parser


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def client_url(sock: socket.socket) -> str:
    """The URL clients use: the bound address, or this machine's name when bound to every interface."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def log_config(level: str) -> dict[str, Any]:
    """Logging for the server and every worker process: the request log and uvicorn's own, on stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "forgeml": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


def cmd_server(args: argparse.Namespace) -> int:
    import uvicorn

    from forgeml.config import Config
    from forgeml.server.app import AUTH_ENV, create_app
    from forgeml.service.platform import Platform
    from forgeml.serving.worker import bind_socket

    if args.workers < 1:
        print("forgeml server: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.no_auth and not is_loopback(args.host):
        print(f"forgeml server: --no-auth serves every request unsigned, so it only listens on a loopback address "
              f"(127.0.0.1, ::1, localhost), not {args.host}. Drop --no-auth to serve other machines: clients then "
              "sign with a key from `forgeml keys`.", file=sys.stderr)
        return 2
    config = Config.from_env()
    platform = Platform.get(config)
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"forgeml server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    url = client_url(sock)
    _announce(config, url, args)
    logging_config = log_config(args.log_level)
    common: dict[str, Any] = {"lifespan": "on", "log_config": logging_config, "access_log": False,
                              "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
                              "timeout_keep_alive": KEEP_ALIVE_SECONDS}
    try:
        if args.workers == 1:
            app = create_app(platform, auth=not args.no_auth)
            _serve_until_signalled(uvicorn.Server(uvicorn.Config(app, **common)), sock)
        else:
            from uvicorn.supervisors import Multiprocess

            os.environ.update(config.to_env())
            os.environ[AUTH_ENV] = "0" if args.no_auth else "1"
            server_config = uvicorn.Config("forgeml.server.app:app_from_env", factory=True, workers=args.workers,
                                           **common)
            Multiprocess(server_config, sockets=[sock]).run()
    finally:
        sock.close()
    return 0


def _serve_until_signalled(server: Any, sock: socket.socket) -> None:
    """Serve until SIGTERM/SIGINT, then exit normally.

    uvicorn handles both signals while it serves and afterwards re-raises the one it got through the
    handler installed before it; this one only asks for a stop, so a stop ends in exit status 0.
    """
    def stop_requested(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop_requested) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def write_sagemaker_config(config: Any) -> Path:
    """A sagemaker SDK config file for this server's users: telemetry off, and the default bucket named.

    The SDK asks AWS's regional STS endpoint (never AWS_ENDPOINT_URL) for the account id when it
    has to name the default bucket itself; naming it here keeps unmodified SDK code off the network.
    """
    path = Path(config.home) / "sagemaker-config.yaml"
    path.write_text(
        "SchemaVersion: '1.0'\n"
        "SageMaker:\n"
        "  PythonSDK:\n"
        "    Modules:\n"
        "      TelemetryOptOut: true\n"
        "      Session:\n"
        f"        DefaultS3Bucket: sagemaker-{config.region}-{config.account_id}\n"
    )
    return path


def _announce(config: Any, url: str, args: argparse.Namespace) -> None:
    workers = f", {args.workers} worker processes" if args.workers > 1 else ""
    sdk_config = write_sagemaker_config(config)
    access_key = None
    if not args.no_auth:  # the key exists before anything is printed: a reader of the output may use it at once
        from forgeml.server.auth import KeyStore

        access_key, _secret = KeyStore(config).ensure_default()
    print(f"forgeml server {forgeml.__version__} listening on {url} (FORGEML_HOME={config.home}{workers})")
    if args.no_auth:
        banner = "!" * 78
        print(f"{banner}\n!! AUTHENTICATION IS OFF (--no-auth): every request is accepted unsigned.\n"
              f"!! Anyone who can reach {url} can create jobs, read and delete data.\n{banner}",
              file=sys.stderr, flush=True)
        print(f"Use it:  AWS_ENDPOINT_URL={url} AWS_DEFAULT_REGION={config.region} AWS_ACCESS_KEY_ID=any "
              f"AWS_SECRET_ACCESS_KEY=any SAGEMAKER_USER_CONFIG_OVERRIDE={sdk_config} python your_script.py",
              flush=True)
        return
    credentials = config.home / "credentials"
    print(f"Credentials: {credentials} (profile forgeml, access key {access_key}); more keys: "
          "forgeml keys create")
    print(f"Use it:  AWS_SHARED_CREDENTIALS_FILE={credentials} AWS_PROFILE=forgeml "
          f"AWS_ENDPOINT_URL={url} AWS_DEFAULT_REGION={config.region} SAGEMAKER_USER_CONFIG_OVERRIDE={sdk_config} "
          "python your_script.py", flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m forgeml.cli.server``: the same command on its own."""
    parser = argparse.ArgumentParser(prog="forgeml")
    add_server_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["server", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
