"""The card in points, through the real card library (virtual cards in memory, the test JPKI,
terminal signatures): an organiser confirms volunteer attendance with the resident's card at the
desk's terminal; a partner identifies a member by a card challenge signed at its terminal."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.access.models import AccessRecord
from portal.extensions import db as database
from portal.points import ledger, partners, rules
from portal.points.models import Attendance, VolunteerActivity
from tests.factories import csrf_from, login_staff, make_staff
from tests.portal.points_helpers import bearer, make_client, make_partner, token
from tests.portal.test_cardid import _linked, app_config, card_answer, cards  # noqa: F401


def _scan(client, terminal, profile, page: str) -> dict:
    """The organiser's page asks for a challenge for its desk's terminal; the agent answers."""
    csrf = csrf_from(client.get(page).get_data(as_text=True))
    ch = client.post(
        "/api/card/challenges",
        json={"purpose": "points_attendance", "terminal": terminal.code},
        headers={"X-CSRFToken": csrf},
    ).get_json()
    assert ch["purpose"] == "points_attendance", ch
    answer = terminal.post(
        client, "/api/card/responses", {"challenge": ch["id"], **card_answer(profile, ch["message"])}
    )
    assert answer.status_code == 200, answer.get_json()
    return client.get(f"/api/card/challenges/{ch['id']}").get_json()


def test_attendance_confirmed_by_card_at_the_organisers_terminal(app, db, client, cards):  # noqa: F811
    person, terminal = _linked(db, client, cards)
    organiser = make_staff(roles=["counter"])
    activity = VolunteerActivity(
        title="海岸清掃", held_on=ledger.local_date(), organiser="環境課", created_by="x"
    )
    db.session.add(activity)
    db.session.commit()
    login_staff(client, organiser)
    page = f"/staff/points/activities/{activity.id}"
    html = client.get(page).get_data(as_text=True)
    client.post(page, data={"csrf_token": csrf_from(html), "terminal": terminal.code})
    assert 'data-purpose="points_attendance"' in client.get(page).get_data(as_text=True)
    status = _scan(client, terminal, cards["hanako"], page)
    assert status["status"] == "done" and "/staff/points/attendance/" in status["redirect"]
    resp = client.get(status["redirect"])
    assert resp.status_code == 302
    row = db.session.scalar(select(Attendance))
    assert (row.resident_id, row.via, row.confirmed_by) == (person.id, "card", organiser.login_id)
    assert ledger.balance(person.id).available == rules.DEFAULTS["volunteer"][0]
    # Opening the result again, or scanning the same card again, gives no second award.
    client.get(status["redirect"])
    again = _scan(client, terminal, cards["hanako"], page)
    flashed = client.get(client.get(again["redirect"]).headers["Location"]).get_data(as_text=True)
    assert "参加はすでに確認済み" in flashed
    assert db.session.scalar(select(func.count()).select_from(Attendance)) == 1
    assert ledger.balance(person.id).available == rules.DEFAULTS["volunteer"][0]
    # A counter clerk's scan challenge cannot be turned into an attendance.
    other, clerk = app.test_client(), make_staff(roles=["counter"])
    db.session.commit()
    login_staff(other, clerk)
    assert other.get(status["redirect"]).status_code == 404


def test_partner_identifies_a_member_by_card(app, db, client, cards):  # noqa: F811
    person, _terminal = _linked(db, client, cards)
    shop = make_partner(name="みなと商店街")
    client_id, secret = make_client(shop)
    member = partners.opt_in(person.id, shop.id).member_id
    database.session.commit()
    tok = token(client, client_id, secret)
    ch = client.post("/api/points/members/challenges", headers=bearer(tok)).get_json()
    assert ch["purpose"] == "points_member"
    signed = card_answer(cards["hanako"], ch["message"])
    resp = client.post(
        "/api/points/members/identify", json={"challenge": ch["id"], **signed}, headers=bearer(tok)
    )
    assert resp.status_code == 200 and resp.get_json() == {"member_id": member}
    record = database.session.scalar(select(AccessRecord).order_by(AccessRecord.id.desc()))
    assert (record.resident_id, record.actor_kind, record.purpose) == (
        person.id,
        "partner",
        "points_partner: identify_card",
    )
    # Single use.
    resp = client.post(
        "/api/points/members/identify", json={"challenge": ch["id"], **signed}, headers=bearer(tok)
    )
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "challenge_used"
    # Another partner cannot answer this partner's challenge; a browser cannot ask for one.
    other = make_partner(name="別の店")
    cid, sec = make_client(other)
    ch = client.post("/api/points/members/challenges", headers=bearer(tok)).get_json()
    resp = client.post(
        "/api/points/members/identify",
        json={"challenge": ch["id"], **card_answer(cards["hanako"], ch["message"])},
        headers=bearer(token(client, cid, sec)),
    )
    assert resp.status_code == 404
    assert client.post("/api/card/challenges", json={"purpose": "points_member"}).status_code in (400, 403)
    # A card that is not linked is refused with the card error's code.
    ch = client.post("/api/points/members/challenges", headers=bearer(tok)).get_json()
    resp = client.post(
        "/api/points/members/identify",
        json={"challenge": ch["id"], **card_answer(cards["unlinked"], ch["message"])},
        headers=bearer(tok),
    )
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "card_not_linked"
