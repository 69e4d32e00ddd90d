from datetime import date

from sqlalchemy import func, select

from portal import demo
from portal.accounts.models import StaffUser
from portal.authz import STAFF_ROLES
from portal.registry.models import Household, Resident, Ward
from portal.vault.models import IndividualNumberRecord


def test_demo_city_has_the_people_later_services_need(app, db):
    logins = demo.load()
    today = date.today()
    people = list(db.session.scalars(select(Resident)))
    assert db.session.scalar(select(func.count()).select_from(Ward)) == 3
    assert db.session.scalar(select(func.count()).select_from(Household)) == 200
    assert 450 <= len(people) <= 650
    assert any(p.age_on(today) < 1 for p in people), "infants"
    assert any(6 <= p.age_on(today) <= 15 for p in people), "school children"
    assert any(p.pregnancy_due_on for p in people)
    assert any(p.care_level for p in people) and any(p.age_on(today) >= 75 for p in people)
    assert any(p.disability_certificate for p in people)
    assert any(p.status == "moved_out" for p in people)
    assert db.session.scalar(select(func.count()).select_from(IndividualNumberRecord)) == len(people)
    roles = {r for u in db.session.scalars(select(StaffUser)) for r in u.role_list}
    assert roles == set(STAFF_ROLES)
    assert any(login.login.startswith("resident1@") for login in logins)
    # loading again changes nothing
    demo.load()
    assert db.session.scalar(select(func.count()).select_from(Resident)) == len(people)


def test_demo_cli_prints_logins(app, db):
    result = app.test_cli_runner().invoke(args=["demo", "load", "--households", "5"])
    assert result.exit_code == 0 and "counter1" in result.output and "resident1@" in result.output
