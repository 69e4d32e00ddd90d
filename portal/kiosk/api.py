"""The kiosk terminal's own call: its agent says the card was taken off (``--report-removal``), and
every open kiosk session on that terminal ends, whatever the page is doing. Terminal-signed only."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from portal.authz import allow
from portal.cardid import service as cardid
from portal.extensions import csrf, db
from portal.kiosk import service

bp = Blueprint("kiosk_api", __name__, url_prefix="/api/kiosk")


@bp.route("/card-removed", methods=["POST"])
@allow("public")  # terminal-signed only: checked below before anything changes
@csrf.exempt
def card_removed():
    try:
        terminal = cardid.authenticate_terminal(
            request.headers,
            request.method,
            request.script_root + request.full_path.rstrip("?"),
            request.get_data(),
        )
    except cardid.CardIdError as exc:
        db.session.rollback()
        return jsonify(error={"code": exc.code, "message": "terminal refused"}), exc.status
    if terminal is None:
        return jsonify(error={"code": "terminal_required", "message": "a signed terminal request"}), 401
    ended = service.end_open_sessions(terminal.code, "card_removed")
    db.session.commit()
    return jsonify(ended=ended)
