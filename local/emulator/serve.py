"""Runs gcloud-tasks-emulator 0.6.2 on 127.0.0.1 only, in its own virtualenv (.venv-emulator).

The packaged entry point binds [::] on a fixed port with two gRPC worker threads; this one
binds loopback (port 0 picks a free one, announced as a JSON line on stdout), and fixes two
fidelity gaps so that tests exercise real Cloud Tasks behaviour rather than the emulator's:
unnamed tasks get random ids (the emulator uses a microsecond timestamp, which collides under
concurrency) and a reused task name is refused with ALREADY_EXISTS (the emulator accepts it).

For the benchmark it can also add a simulated network round trip to every call (`--rtt-ms`),
and for tests lose every Nth CreateTask response after the task was created (`--fail-every`),
which is what a client sees as UNAVAILABLE when a response is lost in transit.
"""

import argparse
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from gcloud_tasks_emulator.cloudtasks_pb2_grpc import add_CloudTasksServicer_to_server
from gcloud_tasks_emulator.server import Greeter, Processor, QueueState
from google.api_core.exceptions import AlreadyExists
from google.cloud.tasks_v2 import Queue, Task


class StrictQueueState(QueueState):
    """The emulator's in-memory state, with the real API's naming rules."""

    def __init__(self, max_retries: int) -> None:
        # Target host/port only apply to App Engine tasks; HTTP tasks carry their own URL.
        super().__init__("127.0.0.1", 0, max_retries)
        self._names: set[str] = set()
        self._names_lock = threading.Lock()

    def create_task(self, queue: str, task: Task) -> Task:
        with self._names_lock:
            if not task.name:
                task.name = f"{queue}/tasks/{uuid.uuid4().hex}"
            elif task.name in self._names:
                raise AlreadyExists(f"Requested entity already exists: {task.name}")
            created = super().create_task(queue, task)
            self._names.add(created.name)
            return created


class NetworkSimulator(grpc.ServerInterceptor):
    """Delays every call by one round trip and optionally loses some CreateTask responses.

    The delay runs in the worker thread that serves the call, not in the interceptor itself
    (which gRPC runs on its single polling thread and would serialise every call).
    """

    def __init__(self, rtt_s: float, fail_every: int) -> None:
        self._rtt_s = rtt_s
        self._fail_every = fail_every
        self._creates = 0
        self._lock = threading.Lock()

    def _lose_response(self, method: str) -> bool:
        if not self._fail_every or not method.endswith("/CreateTask"):
            return False
        with self._lock:
            self._creates += 1
            return self._creates % self._fail_every == 0

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method: str = handler_call_details.method  # pyright: ignore[reportAttributeAccessIssue]

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            if self._rtt_s:
                time.sleep(self._rtt_s)
            response = inner(request, context)
            if self._lose_response(method):
                context.abort(grpc.StatusCode.UNAVAILABLE, "injected fault: response lost")
            return response

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="gcloud-tasks-emulator on 127.0.0.1 only")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument(
        "--queue", action="append", default=[], help="projects/P/locations/L/queues/Q to create"
    )
    parser.add_argument(
        "--max-retries", type=int, default=-1, help="retries after a failed delivery (-1: forever)"
    )
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="simulated round trip per call")
    parser.add_argument("--fail-every", type=int, default=0, help="lose every Nth CreateTask reply")
    parser.add_argument("--workers", type=int, default=64, help="gRPC worker threads")
    parser.add_argument("--verbose", action="store_true", help="log every task (slow)")
    return parser.parse_args()


def main() -> int:
    args = _parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO if args.verbose else logging.WARNING)
    state = StrictQueueState(args.max_retries)
    for name in args.queue:
        state.create_queue(name.rsplit("/", 2)[0], Queue(name=name))

    interceptors: list[grpc.ServerInterceptor] = [
        NetworkSimulator(args.rtt_ms / 1000.0, args.fail_every)
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.workers), interceptors=interceptors
    )
    add_CloudTasksServicer_to_server(Greeter(state), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    processor = Processor(state)
    processor.start()

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(json.dumps({"event": "ready", "host": "127.0.0.1", "port": port}), flush=True)
    stop.wait()
    server.stop(grace=0)
    processor.join(timeout=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
