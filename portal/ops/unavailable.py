"""A backing service down is a retryable 503, not a 500: the database restarting (the request's
transaction is rolled back, so nothing is half-written) or Redis gone when a job is enqueued.
Clients get ``Retry-After``; under /api/ (or when JSON is asked for) the body is JSON."""

from __future__ import annotations

from flask import Flask, current_app, make_response
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import DBAPIError, OperationalError

from portal.ops import metrics

RETRY_AFTER_SECONDS = 5
MESSAGE = _l("The service is briefly unavailable. Please try again in a few seconds.")


def _connection_lost(exc: DBAPIError) -> bool:
    return bool(exc.connection_invalidated) or isinstance(exc, OperationalError)


def _answer(service: str):
    from portal.errors import _respond

    metrics.UNAVAILABLE.labels(service=service).inc()
    if service == "database":
        # the page is drawn as for a visitor: loading the logged-in user would need the database
        from flask import g

        from portal.extensions import login_manager

        g._login_user = login_manager.anonymous_user()
    try:
        response = make_response(*_respond(503, MESSAGE))
    except Exception:  # the page itself needed the database (a logged-in menu): plain text
        text = "The service is briefly unavailable. Please try again in a few seconds."
        response = make_response(text + "\n", 503, {"Content-Type": "text/plain; charset=utf-8"})
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _remove_session(exc: BaseException | None) -> None:
    """Runs before Flask-SQLAlchemy's own teardown: ending the request's session must not turn an
    answer already made into a 500 because the database went away meanwhile (the ROLLBACK of a
    dead connection fails). The dead connection is dropped from the pool instead."""
    from portal.extensions import db

    try:
        db.session.remove()
    except DBAPIError:
        current_app.logger.warning("database connection lost at the end of a request; dropped")
        db.session.registry.clear()


def init_app(app: Flask) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    app.teardown_appcontext(_remove_session)

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError):
        from portal.extensions import db

        try:
            db.session.rollback()
        except Exception:
            db.session.remove()
        if not _connection_lost(exc):
            current_app.logger.exception("database error on a request")
            from portal.errors import MESSAGES, _respond

            return _respond(500, MESSAGES[500])
        current_app.logger.warning("database unavailable: %s", type(exc.orig).__name__)
        return _answer("database")

    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    def redis_error(exc: Exception):
        current_app.logger.warning("redis unavailable: %s", type(exc).__name__)
        return _answer("redis")
