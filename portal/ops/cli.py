"""``flask ops scheduler``: the one process that runs the timed jobs; ``flask ops ready``: the
readiness checks from a shell (exit 1 when not ready)."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

ops = AppGroup("ops", help="Operations: the job scheduler and readiness checks.")


@ops.command("scheduler")
@click.option("--once", is_flag=True, help="Run every due job once and exit.")
@click.option("--timeout", default=600, show_default=True, help="Seconds a job may run.")
def scheduler_command(once: bool, timeout: int) -> None:
    """Run the timed jobs of PORTAL_SCHEDULE (notices, channel retries, booking reminders, points)."""
    from portal.ops import scheduler

    jobs = scheduler.available(scheduler.schedule_from_env(), current_app.cli.commands)
    scheduler.loop(jobs, once=once, timeout=timeout)


@ops.command("ready")
def ready_command() -> None:
    """Database reachable and at the migrations' head; Redis reachable when configured."""
    from portal.ops.health import check_database, check_redis

    failed = False
    for name, check in (("database", check_database), ("redis", check_redis)):
        ok, detail = check()
        click.echo(f"{name}: {detail}")
        failed |= not ok
    sys.exit(1 if failed else 0)


def init_app(app: Flask) -> None:
    app.cli.add_command(ops)


@ops.command("fingerprint")
def fingerprint_command() -> None:
    """Every table's row count and a hash of its content (PostgreSQL): compare a restore with its
    backup, or two databases, with diff."""
    from portal.ops.fingerprint import fingerprints, render

    click.echo(render(fingerprints()), nl=False)


@ops.command("backup")
@click.argument("dest", type=click.Path(file_okay=False))
def backup_command(dest: str) -> None:
    """pg_dump -Fc into DEST with its SHA-256 and its tables' fingerprints (one snapshot)."""
    from pathlib import Path

    from portal.ops.fingerprint import backup

    click.echo(str(backup(Path(dest))))
