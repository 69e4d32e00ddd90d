"""Prometheus metrics, safe under gunicorn's several worker processes and the RQ workers.

With ``PROMETHEUS_MULTIPROC_DIR`` set (deploy/gunicorn.conf.py and the worker units set it, before
anything imports prometheus_client), each process writes its counters to files in that folder and a
scrape adds them up; without it (development, tests) the process's own registry is shown.
Queue depths are read when scraped, so they are right whichever process asks.

Labels stay bounded: the endpoint name (never the path, which may hold ids), the status code, a
delivery status, a verification result code.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

REQUESTS = Counter(
    "portal_http_requests_total",
    "HTTP requests by endpoint, method and status",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "portal_http_request_duration_seconds",
    "Time to build the response, by endpoint",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DELIVERIES = Counter("portal_notice_deliveries_total", "Notice e-mail and push sends by outcome", ["status"])
CARD_VERIFICATIONS = Counter(
    "portal_card_verifications_total", "Card certificate and signature verifications by result", ["result"]
)
UNAVAILABLE = Counter(
    "portal_unavailable_total", "Requests answered 503 because a backing service was down", ["service"]
)


def notice_delivery(status: str) -> None:
    DELIVERIES.labels(status=status).inc()


def card_verification(result: str) -> None:
    CARD_VERIFICATIONS.labels(result=result).inc()


class QueueCollector:
    """Read at scrape time: the RQ queue length, failed jobs, and channel rows not yet sent."""

    def __init__(self, app) -> None:
        self.app = app

    def describe(self):
        return []

    def collect(self):
        depth = GaugeMetricFamily("portal_queue_depth", "Jobs waiting in the RQ queue", labels=["queue"])
        failed = GaugeMetricFamily(
            "portal_queue_failed_jobs", "Jobs in RQ's failed registry", labels=["queue"]
        )
        rows = GaugeMetricFamily(
            "portal_notice_channel_rows", "E-mail and push rows not yet sent, by status", labels=["status"]
        )
        up = GaugeMetricFamily(
            "portal_backend_up", "Whether a backing service answered the scrape", labels=["service"]
        )
        name = self.app.config["JOBS_QUEUE"]
        url = self.app.config.get("REDIS_URL")
        if url:
            try:
                from redis import Redis
                from rq import Queue
                from rq.registry import FailedJobRegistry

                conn = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
                queue = Queue(name, connection=conn)
                depth.add_metric([name], queue.count)
                failed.add_metric([name], FailedJobRegistry(queue=queue).count)
                up.add_metric(["redis"], 1)
            except Exception:
                up.add_metric(["redis"], 0)
        try:
            from sqlalchemy import func, select

            from portal.extensions import db
            from portal.notices.models import ChannelDelivery

            with self.app.app_context():
                counts = db.session.execute(
                    select(ChannelDelivery.status, func.count())
                    .where(ChannelDelivery.status.in_(("queued", "claimed", "sending")))
                    .group_by(ChannelDelivery.status)
                ).all()
                db.session.remove()
            found = dict(counts)
            for status in ("queued", "claimed", "sending"):
                rows.add_metric([status], found.get(status, 0))
            up.add_metric(["database"], 1)
        except Exception:
            up.add_metric(["database"], 0)
        yield from (depth, failed, rows, up)


def exposition(app) -> bytes:
    """The text a scrape gets: every process's counters (multiprocess) or this one's, and the queues."""
    from prometheus_client import REGISTRY

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(QueueCollector(app))
        return generate_latest(registry)
    registry = CollectorRegistry()
    registry.register(QueueCollector(app))
    return generate_latest(REGISTRY) + generate_latest(registry)


def process_dead(pid: int) -> None:
    """gunicorn's child_exit hook: drop a dead worker's live gauges (counters stay summed)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
