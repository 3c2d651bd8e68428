"""The IAM roles a pipeline grants, named once: components.pipeline grants them and
components.names derives the grants' resource names from them up front."""

RUN_INVOKER = "roles/run.invoker"
ENQUEUER = "roles/cloudtasks.enqueuer"
SERVICE_ACCOUNT_USER = "roles/iam.serviceAccountUser"
OPENID_TOKEN_CREATOR = "roles/iam.serviceAccountOpenIdTokenCreator"
PUBLISHER = "roles/pubsub.publisher"
SUBSCRIBER = "roles/pubsub.subscriber"
DATASTORE_USER = "roles/datastore.user"
# Claim checks: enqueuers and replayers create objects in the payload bucket (no read, no
# overwrite, no delete), the runtime account reads them; only the lifecycle rule deletes.
OBJECT_CREATOR = "roles/storage.objectCreator"
OBJECT_VIEWER = "roles/storage.objectViewer"
