"""``flask demo load``, ``flask audit verify``, ``flask staff create``."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from portal.extensions import db

demo = AppGroup("demo", help="The fictional demo city (development only).")
audit = AppGroup("audit", help="Access-record checks.")
staff = AppGroup("staff", help="Staff accounts.")


@demo.command("load")
@click.option("--households", default=200, show_default=True)
def demo_load(households: int) -> None:
    """Create the demo city if it is not there yet, and print the logins."""
    from flask import current_app

    from portal import demo as demo_city

    if current_app.config["NAME"] == "production":
        raise click.ClickException("the demo city is never loaded into production")
    existed = demo_city.loaded()
    logins = demo_city.load(households=households)
    click.echo("Demo city " + ("already loaded." if existed else "loaded."))
    for item in logins:
        click.echo(f"  {item.who:40} {item.login:36} {item.password}")


@demo.command("cards")
@click.option("--limit", type=int, default=None, help="Only the first N residents.")
def demo_cards(limit: int | None) -> None:
    """Make a virtual card (card.sim profile) for every active demo resident, once."""
    from pathlib import Path

    from flask import current_app

    from portal import demo_cards as cards

    if current_app.config["NAME"] == "production":
        raise click.ClickException("demo cards are never made in production")
    root = Path(current_app.instance_path) / "cards"
    made, existing = cards.make_cards(root, current_app.config["CITY_NAME_JA"], limit=limit)
    click.echo(f"Virtual cards: {made} made, {existing} already there, in {root}")
    click.echo("  Their PINs are the demo PINs in README.md (Demo cards).")


@audit.command("verify")
def audit_verify() -> None:
    """Check the access-record hash chain; name the first broken row."""
    from portal.access.service import verify_chain

    report = verify_chain()
    if report.ok:
        click.echo(f"access records: {report.checked} rows, chain intact")
        return
    click.echo(f"access records: chain BROKEN at row id {report.first_broken_id}: {report.reason}")
    sys.exit(1)


@staff.command("create")
@click.argument("login_id")
@click.option("--name", required=True)
@click.option("--organisation", required=True)
@click.option("--role", "roles", multiple=True, required=True)
def staff_create(login_id: str, name: str, organisation: str, roles: tuple[str, ...]) -> None:
    """Create a staff account (the password is asked for, never taken from arguments)."""
    from portal.accounts import service

    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        service.create_staff(login_id, name, organisation, list(roles), password)
    except service.AccountError as exc:
        raise click.ClickException(exc.code) from None
    db.session.commit()
    click.echo(f"staff {login_id} created")


def init_app(app: Flask) -> None:
    for group in (demo, audit, staff):
        app.cli.add_command(group)
