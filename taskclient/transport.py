"""Cloud Tasks, Pub/Sub and Cloud Storage clients for the real APIs or the local emulators.

The emulators speak plain gRPC without TLS or auth: a client must be handed an insecure
channel through its transport (api_endpoint + anonymous credentials does not work).
"""

import ipaddress
import os
import re
import socket
from typing import TYPE_CHECKING, Any

import grpc
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import (
    CloudTasksGrpcAsyncIOTransport,
    CloudTasksGrpcTransport,
)
from google.pubsub_v1 import SubscriberAsyncClient
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcAsyncIOTransport

from taskclient.errors import UsageError

if TYPE_CHECKING:
    from taskclient.pipelines import Pipeline

EMULATOR_ENV = "TASKS_EMULATOR_HOST"
# The variable Google's Pub/Sub clients read for their emulator.
PUBSUB_EMULATOR_ENV = "PUBSUB_EMULATOR_HOST"
STORAGE_EMULATOR_ENV = "STORAGE_EMULATOR_HOST"


# How long an emulator address may take to accept a connection before the run is refused.
REACH_TIMEOUT_S = 5.0
_ADDRESS = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>[0-9]{1,5})"
)


def check_emulator(address: str, *, argument: str = "--emulator") -> str:
    """HOST:PORT (an IPv6 host in brackets) that accepts a connection within 5 s.

    gRPC reads `127.0.0.1:` as port 443 and wraps port 99999 around: both are refused here.
    """
    match = _ADDRESS.fullmatch(address)
    port = int(match.group("port")) if match else 0
    if match is None or not 1 <= port <= 65535:
        raise UsageError(
            f"{argument}: {address!r} is not HOST:PORT with a port 1..65535"
            " (an IPv6 host in brackets: [::1]:8123)"
        )
    host = match.group("ipv6") or match.group("host")
    if match.group("ipv6"):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(f"{argument}: {address!r}: {host} is not an IPv6 address") from None
    try:
        socket.create_connection((host, port), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"{argument}: nothing answers at {address} within {REACH_TIMEOUT_S:g}s ({reason})"
        ) from None
    return address


def emulator_from_env() -> str | None:
    """HOST:PORT of an emulator from TASKS_EMULATOR_HOST, if set."""
    return os.environ.get(EMULATOR_ENV) or None


def pubsub_emulator_from_env() -> str | None:
    return os.environ.get(PUBSUB_EMULATOR_ENV) or None


def storage_emulator_from_env() -> str | None:
    """HOST:PORT of a storage emulator from STORAGE_EMULATOR_HOST, which google-cloud-storage
    takes as a URL (`http://HOST:PORT`)."""
    value = os.environ.get(STORAGE_EMULATOR_ENV) or None
    return value.removeprefix("http://") if value else None


def use_storage_emulator(address: str) -> None:
    """Points this process's google-cloud-storage at a checked emulator address: the
    library reads STORAGE_EMULATOR_HOST itself (storage_client below)."""
    os.environ[STORAGE_EMULATOR_ENV] = f"http://{address}"


def _no_credentials() -> UsageError:
    return UsageError(
        "no Google credentials found: run `gcloud auth application-default login`, "
        "run on Google Cloud, or pass --emulator HOST:PORT"
    )


def sync_client(emulator: str | None) -> tasks_v2.CloudTasksClient:
    if emulator:
        channel = grpc.insecure_channel(emulator)
        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    try:
        return tasks_v2.CloudTasksClient()
    except DefaultCredentialsError:
        raise _no_credentials() from None


def async_client(emulator: str | None) -> tasks_v2.CloudTasksAsyncClient:
    """Must be called inside the event loop that will use it (gRPC aio channels bind to it)."""
    if emulator:
        channel = grpc.aio.insecure_channel(emulator)
        transport = CloudTasksGrpcAsyncIOTransport(channel=channel)
        return tasks_v2.CloudTasksAsyncClient(transport=transport)
    try:
        return tasks_v2.CloudTasksAsyncClient()
    except DefaultCredentialsError:
        raise _no_credentials() from None


def async_subscriber(emulator: str | None) -> SubscriberAsyncClient:
    """Pub/Sub's subscriber for the real API, or an emulator over plain gRPC. Must be called
    inside the event loop that will use it."""
    if emulator:
        channel = grpc.aio.insecure_channel(emulator)
        return SubscriberAsyncClient(transport=SubscriberGrpcAsyncIOTransport(channel=channel))
    try:
        return SubscriberAsyncClient()
    except DefaultCredentialsError:
        raise _no_credentials() from None


def storage_client(pipeline: "Pipeline") -> Any:
    """Cloud Storage for a pipeline's payload bucket (the project from its queue), or the
    emulator at STORAGE_EMULATOR_HOST, which google-cloud-storage reads itself."""
    from google.cloud import storage

    project = pipeline.queue.split("/")[1]
    if os.environ.get(STORAGE_EMULATOR_ENV):
        return storage.Client(project=project, credentials=AnonymousCredentials())
    try:
        return storage.Client(project=project)
    except DefaultCredentialsError:
        raise _no_credentials() from None
