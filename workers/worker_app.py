"""Entry point for ``celery -A workers.worker_app worker``: the Celery app of this process."""

import logging
import os

from celery.signals import worker_process_init

from app.queue.celery_app import make_celery
from app.settings import get_settings

log = logging.getLogger(__name__)

celery = make_celery()
log.warning("broker in use: %s", celery.eddyscope_broker.describe())


@worker_process_init.connect
def _limit_torch_threads(**_kwargs) -> None:
    # OpenMP threads spin while they wait; on a small machine shared with the app server
    # they fight over cores and make small FFTs several times slower (measured: a 64², 200-step
    # reference rollout took 11.8 s with 2 threads next to the server on 2 cores, 4.8 s with 1).
    import torch

    threads = get_settings().torch_threads or max(1, (os.cpu_count() or 2) // 2)
    torch.set_num_threads(threads)
    log.info("torch uses %d CPU thread(s) in this worker process", threads)
