"""Cloud Tasks clients for the real API or the local emulator.

The emulator speaks plain gRPC without TLS or auth: the client must be handed an insecure
channel through the transport (api_endpoint + anonymous credentials does not work).
"""

import os

import grpc
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import (
    CloudTasksGrpcAsyncIOTransport,
    CloudTasksGrpcTransport,
)

from taskclient.errors import UsageError

EMULATOR_ENV = "TASKS_EMULATOR_HOST"


def emulator_from_env() -> str | None:
    """HOST:PORT of an emulator from TASKS_EMULATOR_HOST, if set."""
    return os.environ.get(EMULATOR_ENV) or None


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
