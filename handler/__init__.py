"""Task handler: the Cloud Run service that Cloud Tasks delivers a pipeline's tasks to."""
