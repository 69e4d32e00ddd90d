"""Background work: RQ on Redis in production, run inline in the embedded default and in tests.

Services call ``enqueue(func, *args)`` with an importable function; with ``JOBS_INLINE`` (the
default outside production) it runs at once in the caller, inside the app context."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app


def enqueue(func: Callable[..., Any], *args: Any, job_id: str | None = None) -> Any:
    if current_app.config["JOBS_INLINE"]:
        return func(*args)
    from redis import Redis
    from rq import Queue

    queue = Queue(
        current_app.config["JOBS_QUEUE"], connection=Redis.from_url(current_app.config["REDIS_URL"])
    )
    return queue.enqueue(func, *args, job_id=job_id, retry=None)


def run_in_app(func_path: str, *args: Any) -> Any:
    """What an RQ worker runs: the named function inside a fresh app context."""
    import importlib

    from wsgi import create_app

    module, _, name = func_path.rpartition(".")
    app = create_app()
    with app.app_context():
        return getattr(importlib.import_module(module), name)(*args)
