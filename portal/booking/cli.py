"""``flask booking``: the reminder run (the ops scheduler calls it daily), slot materialisation.

    0 18 * * *  cd /srv/portal && .venv/bin/flask --app wsgi booking remind

Both are idempotent: a repeated or overlapping run adds nothing.
"""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask
from flask.cli import AppGroup

booking = AppGroup("booking", help="Counter booking: reminders and slots.")


@booking.command("remind")
def remind_command() -> None:
    """Remind everybody booked for tomorrow, once per booking (PO box, push, e-mail)."""
    from portal.booking import notify

    click.echo(f"reminders sent: {notify.remind()}")


@booking.command("slots")
@click.option("--days", type=int, default=None, help="How far ahead (default: the longest horizon).")
def slots_command(days: int | None) -> None:
    """Materialise the bookable slots of every office ahead of time (searches also do it lazily)."""
    from portal.booking import service

    through = service.horizon_day() if days is None else service.today_in_tokyo() + timedelta(days=days)
    click.echo(f"slots made: {service.ensure_slots(through)}")


def init_app(app: Flask) -> None:
    app.cli.add_command(booking)
