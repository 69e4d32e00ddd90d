"""Who may use a route. Every endpoint declares it; an undeclared endpoint is refused (and a test fails).

Principals:
  ``public``     anyone, logged in or not
  ``resident``   a resident logged in to the portal, linked to a register record
  ``account``    a resident account, linked or not (settings, linking the register record)
  staff roles    ``counter``, ``processing``, ``author``, ``library``, ``shelter``, ``auditor``, ``admin``
  ``terminal``   a registered terminal's signed request (later issues)
  ``partner``    a points partner over OAuth2 (later issues)
  ``monitor``    a metrics scrape: from loopback, or with the METRICS_TOKEN bearer token
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import abort, current_app, redirect, request, url_for
from flask_login import current_user

STAFF_ROLES = ("counter", "processing", "author", "library", "shelter", "auditor", "admin")
PRINCIPALS = frozenset(("public", "resident", "account", "terminal", "partner", "monitor", *STAFF_ROLES))

F = TypeVar("F", bound=Callable)


def allow(*principals: str) -> Callable[[F], F]:
    """Declare who may use a view: ``@allow("resident")``, ``@allow("counter", "admin")``."""
    unknown = set(principals) - PRINCIPALS
    if not principals or unknown:
        raise ValueError(f"allow(): unknown or empty principals {sorted(unknown)}")

    def mark(view: F) -> F:
        view.allowed_principals = frozenset(principals)  # type: ignore[attr-defined]
        return view

    return mark


def declared(view: Callable) -> frozenset[str] | None:
    return getattr(view, "allowed_principals", None)


def user_principals() -> set[str]:
    if not current_user.is_authenticated:
        return {"public"}
    return {"public", *current_user.principals()}


def enforce() -> None:
    """before_request: refuse what the endpoint does not allow; fail closed on undeclared routes."""
    if request.endpoint is None:
        return  # 404 follows
    view = current_app.view_functions.get(request.endpoint)
    allowed = declared(view) if view is not None else None
    if allowed is None:
        if request.endpoint == "static" or request.endpoint.endswith(".static"):
            return
        current_app.logger.error("route %s declares no principals; refused", request.endpoint)
        abort(403)
    if "public" in allowed:
        return
    have = user_principals()
    if have & allowed:
        return
    if "monitor" in allowed:
        from portal.ops.health import is_monitor

        if is_monitor():
            return
        abort(403)
    if not current_user.is_authenticated:
        if request.path.startswith("/api/"):
            abort(401)
        staff_only = not (allowed & {"resident", "account"})
        target = "accounts.staff_login" if staff_only else "accounts.login"
        return redirect(
            url_for(target, next=request.full_path.rstrip("?") if request.method == "GET" else None)
        )
    abort(403)
