"""``flask kiosk demo`` (run by ``make run``): the demo kiosk terminal is registered once with a key
kept in the instance folder, the demo resident's virtual card is linked, and the commands printed
start the agent with that card."""

from __future__ import annotations

import os
import stat

from sqlalchemy import select

from portal import demo
from portal.cardid.models import CardCredential, Terminal
from portal.demo_cards import make_cards
from portal.kiosk import demo as kiosk_demo


def test_demo_kiosk_is_registered_once_and_printed(app, db, tmp_path):
    demo.load(households=3)
    make_cards(tmp_path / "cards", "みなと市")
    app.config["CARD_TRUST_DIR"] = str(tmp_path / "cards" / "pki")
    app.config["CARD_CRL_FILES"] = ()
    app.extensions.pop("card_verifier", None)
    app.instance_path = str(tmp_path)
    result = app.test_cli_runner().invoke(args=["kiosk", "demo", "--server", "http://127.0.0.1:5000"])
    assert result.exit_code == 0, result.output
    made = kiosk_demo.setup(str(tmp_path))  # again: nothing new
    terminal = db.session.scalar(select(Terminal).where(Terminal.code == kiosk_demo.TERMINAL))
    assert terminal.kind == "kiosk" and terminal.active
    assert stat.S_IMODE(made.key_file.stat().st_mode) == 0o600
    links = db.session.scalars(select(CardCredential)).all()
    assert len(links) == 1 and made.card_dir is not None and made.card_dir.name == links[0].resident.atena_no
    assert "http://127.0.0.1:5000/kiosk/?terminal=kiosk-demo-01" in result.output
    key, card = os.path.relpath(made.key_file), os.path.relpath(made.card_dir)
    assert f"--terminal kiosk-demo-01 --key {key} --report-removal --sim {card}" in result.output
