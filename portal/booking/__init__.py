"""Appointment booking and waiting numbers for ward-office counters (窓口予約・番号札).

``init_app(app)`` registers the resident pages, the staff console, the kiosk check-in and calling
board pages and the ``flask booking`` commands."""


def init_app(app) -> None:
    from portal.booking import cli, floor_views, models, staff_views, views  # noqa: F401 - models: tables

    views.init_app(app)
    staff_views.init_app(app)
    floor_views.init_app(app)
    if "kiosk" in app.blueprints:  # card check-in through the kiosk's card session (portal.kiosk)
        from portal.booking import kiosk_checkin

        kiosk_checkin.init_app(app)
    cli.init_app(app)
