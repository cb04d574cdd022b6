"""Celery workers: the inbound pipeline, outbound sends and the sweeper that beat runs."""
