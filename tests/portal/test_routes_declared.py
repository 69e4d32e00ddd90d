"""Every route declares who may use it (GOV.UK Notify's idea): an undeclared route fails here."""

from portal.authz import PRINCIPALS, declared


def test_every_endpoint_declares_principals(app):
    undeclared = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        allowed = declared(app.view_functions[rule.endpoint])
        if not allowed:
            undeclared.append(f"{rule.endpoint} {rule.rule}")
        else:
            assert allowed <= PRINCIPALS
    assert undeclared == [], "routes without @allow: " + ", ".join(undeclared)


def test_undeclared_route_is_refused(app, client):
    app.add_url_rule("/oops", "oops", lambda: "secret")
    assert client.get("/oops").status_code == 403


def test_staff_routes_refuse_residents_and_anonymous(app, client, db):
    from tests.factories import login_resident, make_account, make_resident

    account = make_account(resident=make_resident())
    db.session.commit()
    assert client.get("/staff/residents").status_code == 302  # to the staff login
    login_resident(client, account)
    assert client.get("/staff/residents").status_code == 403
    assert client.get("/staff/audit").status_code == 403
