"""`python -m handler --host 127.0.0.1 --port N`: serve the task handler.

On Cloud Run the container runs it with --host 0.0.0.0 and the port from $PORT. Everything
else comes from the environment (handler/settings.py): threads from TASK_CONCURRENCY.
"""

import argparse
import os
import sys

from handler import payloads, settings
from handler.app import create_app
from handler.proxy import AppProxy
from handler.server import HandlerServer


def _port(raw: str) -> int:
    if not raw.isdigit() or int(raw) > 65535:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number (0-65535)")
    return int(raw)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m handler", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=None, help="port; default $PORT, else 8080; 0 picks one"
    )
    args = parser.parse_args()
    try:
        port = args.port if args.port is not None else _port(os.environ.get("PORT", "8080"))
        runtime = settings.runtime(os.environ)
        payload_reader = payloads.from_env(os.environ)
        processor = settings.processor()
        app = create_app(
            processor,
            store=runtime.store,
            dead_letter=runtime.dead_letter,
            max_attempts=settings.max_attempts(os.environ),
            max_retry_duration=settings.max_retry_duration(os.environ),
            dispatch_deadline=runtime.dispatch_deadline,
            tracing=runtime.tracing,
            payloads=payload_reader,
            schedules=settings.schedules(os.environ),
        )
    except (
        settings.SettingsError,
        payloads.PayloadSettingsError,
        argparse.ArgumentTypeError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    described = {
        **runtime.describe(),
        "payloadBucket": payload_reader.describe(),
        "schedules": sorted(settings.schedules(os.environ)),
        "processor": (
            f"the app at {processor.url} (proxy mode)"
            if isinstance(processor, AppProxy)
            else os.environ.get("TASK_PROCESSOR") or settings.DEFAULT_PROCESSOR
        ),
    }
    server = HandlerServer(
        app, host=args.host, port=port, threads=runtime.threads, settings=described
    )
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
