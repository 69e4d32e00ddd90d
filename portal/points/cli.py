"""``flask points daily`` (expiry, pending → active, tiers; idempotent), ``flask points
demo-clients`` (the demo partners' API clients), ``flask points settlement``."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from portal.extensions import db

points = AppGroup("points", help="Citizen points: the daily run, settlement, demo clients.")


@points.command("daily")
def daily() -> None:
    """Expire points past their date, activate pending points, recompute tiers. Safe to run again."""
    from portal.points import ledger, tiers

    activated = ledger.activate_due()
    db.session.commit()
    expired = ledger.expire_due()
    changed = tiers.recompute()
    click.echo(f"points daily: {activated} lots activated, {expired} lots expired, {changed} tiers changed")


@points.command("settlement")
@click.argument("partner_code")
@click.argument("month")
@click.option(
    "--out", type=click.Path(dir_okay=False, writable=True), help="write the CSV here (default: stdout)"
)
def settlement(partner_code: str, month: str, out: str | None) -> None:
    """The monthly settlement CSV for one partner, e.g. ``flask points settlement shop-01 2026-11``."""
    from portal.points import partners
    from portal.points.ledger import PointsError
    from portal.points.models import Partner

    partner = db.session.scalar(select(Partner).where(Partner.code == partner_code))
    if partner is None:
        raise click.ClickException(f"no partner {partner_code!r}")
    try:
        body = partners.settlement_csv(partner, month)
    except PointsError as exc:
        raise click.ClickException(exc.code) from None
    if out:
        with open(out, "w", encoding="utf-8-sig", newline="") as f:
            f.write(body)
    else:
        click.echo(body, nl=False)


@points.command("demo-clients")
def demo_clients() -> None:
    """Make (again) an API client for every demo partner and print the credentials."""
    from portal.points import demo

    if current_app.config["NAME"] == "production":
        raise click.ClickException("demo clients are never made in production")
    for line in demo.client_lines(demo.new_clients()):
        click.echo(line)


def init_app(app: Flask) -> None:
    app.cli.add_command(points)
