"""``flask notices run-scheduled``: the PO box's scheduled work, for cron or an RQ scheduler.

    */5 * * * *  cd /srv/portal && .venv/bin/flask --app wsgi notices run-scheduled

Sends the approved notices whose send time has passed and runs the day's life-event triggers
(vaccination ages, card certificates expiring within 90 days). Both are idempotent: an overlapping
or repeated run adds nothing.
"""

from __future__ import annotations

from datetime import date

import click
from flask import Flask
from flask.cli import AppGroup

notices = AppGroup("notices", help="Electronic PO box: scheduled sends and life-event triggers.")


@notices.command("run-scheduled")
def run_scheduled_command() -> None:
    """Send due approved notices, then run today's life-event triggers."""
    from portal.notices import triggers

    out = triggers.run_scheduled()
    sent = {k: v for k, v in out.items() if k.startswith("notice:")}
    fired = {k: v for k, v in out.items() if not k.startswith("notice:")}
    click.echo(f"notices sent: {len(sent)} ({sum(sent.values())} deliveries)")
    click.echo(f"life-event triggers: {sum(fired.values())} residents")
    for key, count in sorted(fired.items()):
        if count:
            click.echo(f"  {key}: {count}")


@notices.command("run-triggers")
@click.option("--on", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Date (default: today in Tokyo).")
def run_triggers_command(on) -> None:
    """Run the life-event triggers only (for a given date, e.g. to catch up a missed day)."""
    from portal.notices import triggers

    day: date | None = on.date() if on else None
    fired = triggers.run_triggers(day)
    click.echo(f"life-event triggers: {sum(fired.values())} residents")
    for key, count in sorted(fired.items()):
        if count:
            click.echo(f"  {key}: {count}")


def init_app(app: Flask) -> None:
    if "notices" not in app.cli.commands:
        app.cli.add_command(notices)
