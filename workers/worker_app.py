"""Entry point for ``celery -A workers.worker_app worker``: the Celery app of this process."""

import logging

from workers.celery_app import make_celery

celery = make_celery()
logging.getLogger(__name__).warning("broker in use: %s", celery.eddyscope_broker.describe())
