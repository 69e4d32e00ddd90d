"""``flask kiosk demo``: register the demo kiosk and print how to run it (development only)."""

from __future__ import annotations

import os

import click
from flask import current_app
from flask.cli import AppGroup

kiosk = AppGroup("kiosk", help="City kiosk terminals.")


@kiosk.command("demo")
@click.option("--server", default="http://127.0.0.1:5000", show_default=True, help="The portal's URL.")
def demo(server: str) -> None:
    """Register the demo kiosk terminal, link the demo resident's card, print the commands."""
    from portal.kiosk import demo as kiosk_demo

    if current_app.config["NAME"] == "production":
        raise click.ClickException("the demo kiosk is never set up in production")
    made = kiosk_demo.setup(current_app.instance_path)
    key = os.path.relpath(made.key_file)
    click.echo(f"Kiosk terminal {made.terminal}: open {server}/kiosk/?terminal={made.terminal}")
    if made.card_dir is None:
        click.echo("  (no demo card yet: run `flask --app wsgi demo cards`)")
        return
    card = os.path.relpath(made.card_dir)
    click.echo("  and start its agent with the demo resident's virtual card (PIN 1234):")
    agent = f".venv/bin/python -m kiosk.agent --server {server} --terminal {made.terminal}"
    click.echo(f"  {agent} --key {key} --report-removal --sim {card}")
    click.echo("  (type remove / insert on the agent's stdin to take the card off and put it back)")


@kiosk.command("sweep")
def sweep() -> None:
    """End kiosk sessions past their idle or absolute limit and unused tickets (from cron)."""
    from portal.extensions import db
    from portal.kiosk import service

    ended = service.end_stale()
    db.session.commit()
    click.echo(f"{ended} kiosk sessions ended")


def init_app(app) -> None:
    app.cli.add_command(kiosk)
