"""The IAM roles a pipeline grants, named once: components.pipeline grants them and
components.names derives the grants' resource names from them up front."""

RUN_INVOKER = "roles/run.invoker"
ENQUEUER = "roles/cloudtasks.enqueuer"
SERVICE_ACCOUNT_USER = "roles/iam.serviceAccountUser"
OPENID_TOKEN_CREATOR = "roles/iam.serviceAccountOpenIdTokenCreator"
PUBLISHER = "roles/pubsub.publisher"
SUBSCRIBER = "roles/pubsub.subscriber"
DATASTORE_USER = "roles/datastore.user"
