"""Request ids, one JSON log line per request, and request metrics.

``X-Request-ID`` is taken from the request when it looks like an id (nginx sets it) or made here,
returned on the response and put on every log line written while the request runs. Log lines carry
the endpoint name, method, status and duration — never the query string, a form, a cookie or an
address, so no personal data; the redaction filter of ``portal.logs`` still runs on every handler.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

from portal.logs import RedactFilter, redact
from portal.ops import metrics

_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
log = logging.getLogger("portal.request")


def request_id() -> str | None:
    return getattr(g, "request_id", None) if has_request_context() else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any ``extra`` fields
    named in ``FIELDS``. Exception text is redacted like the message."""

    FIELDS = ("endpoint", "method", "status", "duration_ms", "job", "event")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        rid = getattr(record, "request_id", None) or request_id()
        if rid:
            entry["request_id"] = rid
        for field in self.FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def use_json_logs(level: int = logging.INFO) -> None:
    """Route every logger through one stderr handler writing JSON (gunicorn, workers, CLI)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactFilter())
    root.handlers = [handler]
    root.setLevel(level)


def _begin() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _ID.match(incoming) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish(response):
    rid = getattr(g, "request_id", None)
    if rid is None:  # a before_request earlier in the chain answered first
        _begin()
        rid = g.request_id
    response.headers["X-Request-ID"] = rid
    endpoint = request.endpoint or "unmatched"
    elapsed = time.perf_counter() - g.request_started
    metrics.REQUESTS.labels(endpoint=endpoint, method=request.method, status=str(response.status_code)).inc()
    metrics.LATENCY.labels(endpoint=endpoint).observe(elapsed)
    if endpoint not in ("ops.healthz", "ops.metrics_view", "static"):
        log.info(
            "%s %s %s",
            request.method,
            endpoint,
            response.status_code,
            extra={
                "endpoint": endpoint,
                "method": request.method,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )
    return response


def init_app(app: Flask) -> None:
    # first, so the id exists before authz or anything else answers or logs
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request(_finish)
    if app.config.get("LOG_FORMAT") == "json":
        use_json_logs()
        app.logger.handlers = []  # propagate to the root's JSON handler
        app.logger.propagate = True
