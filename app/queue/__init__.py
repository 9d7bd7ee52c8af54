"""The app's side of the job queue: which broker this process uses (``broker``) and how a
job's message is sent and revoked (``celery``). The API, the UI and the CLI enqueue through
here; ``workers/`` consumes the same Celery app and imports it from here, never the other
way round."""
