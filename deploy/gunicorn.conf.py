"""gunicorn for the portal: ``gunicorn -c deploy/gunicorn.conf.py wsgi:app``.

Threads (gthread) rather than more processes: most of a request is waiting on PostgreSQL, and a
long-lived stream (server-sent events) holds a thread, not a whole worker. Every setting can be
overridden from the environment (the systemd unit's EnvironmentFile).
"""

import os
import shutil
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "unix:/run/portal/gunicorn.sock")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so a slow leak never becomes an outage.
max_requests = 5000
max_requests_jitter = 500
umask = 0o007  # the socket is for nginx's group only
pidfile = os.environ.get("GUNICORN_PIDFILE") or None
daemon = os.environ.get("GUNICORN_DAEMON") == "1"
# The app writes one JSON line per request, with its request id; gunicorn's access log would
# repeat it with the query string and the client address, so it is off.
accesslog = None
errorlog = os.environ.get("GUNICORN_ERRORLOG", "-")
loglevel = "info"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "portal.ops.requestlog.JsonFormatter"}},
    "handlers": {
        "err": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    },
    "root": {"handlers": ["err"], "level": "INFO"},
    "loggers": {
        "gunicorn.error": {"handlers": ["err"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}
if errorlog != "-":
    logconfig_dict["handlers"]["err"] = {
        "class": "logging.FileHandler",
        "formatter": "json",
        "filename": errorlog,
    }

# prometheus_client picks its multiprocess mode when first imported: set the folder before the
# workers import the app.
METRICS_DIR = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/run/portal/metrics")


def on_starting(server):
    """A fresh metrics folder per master start: counters of processes long gone do not linger."""
    path = Path(METRICS_DIR)
    if path.exists():
        for item in path.iterdir():
            if item.is_file():
                item.unlink()
            else:
                shutil.rmtree(item)
    path.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    from portal.ops.metrics import process_dead

    process_dead(worker.pid)
