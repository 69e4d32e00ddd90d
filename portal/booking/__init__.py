"""Appointment booking and waiting numbers for ward-office counters (窓口予約・番号札).

``init_app(app)`` registers the resident pages, the staff console, the kiosk check-in and calling
board pages and the ``flask booking`` commands."""


def init_app(app) -> None:
    from portal.booking import cli, models, views  # noqa: F401 - models: tables known to migrations

    views.init_app(app)
    cli.init_app(app)
