"""``flask certificates hsm-init``: set up the city's signing token, key and certificates (once)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

group = AppGroup("certificates", help="Certificates issued at kiosks (コンビニ交付).")


@group.command("hsm-init")
def hsm_init() -> None:
    """Create the SoftHSM2 token, the RSA key in it and the city CA → signer certificate, once."""
    from portal.certificates import hsm

    config = current_app.config
    if config.get("NAME") == "production":
        raise click.ClickException("production keys are made in the city's HSM by its key ceremony")
    directory = config["CERTIFICATE_HSM_DIR"] or hsm.process_test_directory()
    m = hsm.init(
        directory,
        module=config["CERTIFICATE_HSM_MODULE"],
        token_label=config["CERTIFICATE_HSM_TOKEN"],
        key_label=config["CERTIFICATE_HSM_KEY"],
    )
    click.echo(f"Certificate HSM ready: token {m.token_label!r}, key {m.key_label!r} in {m.directory}")
    click.echo(f"  SOFTHSM2_CONF={m.conf}")
    click.echo(f"  city CA: {m.directory / 'ca.pem'}  signer: {m.directory / 'signer.pem'}")


def init_app(app) -> None:
    app.cli.add_command(group)
