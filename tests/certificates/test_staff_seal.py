"""The counter's seal registration page: register from a scanned impression, refuse a second one
and a file that is not an image, abolish; each visit is an access record; other roles are refused."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import select

from portal.access.models import AccessRecord
from portal.certificates import seals, service
from portal.certificates.models import SealRegistration
from tests.factories import csrf_from, login_staff, make_resident, make_staff


def _post(client, url, data):
    page = client.get(url).get_data(as_text=True)
    return client.post(url, data={"csrf_token": csrf_from(page), **data}, content_type="multipart/form-data")


def test_register_and_abolish(app, client, db):
    person = make_resident(family="印鑑", given="登録")
    clerk = make_staff(roles=["counter"])
    db.session.commit()
    login_staff(client, clerk)
    url = f"/staff/residents/{person.id}/seal"
    assert (
        "No seal is registered." in client.get(url).get_data(as_text=True)
        or client.get(url).status_code == 200
    )

    answer = _post(
        client, url, {"action": "register", "impression": (io.BytesIO(b"not an image"), "seal.png")}
    )
    assert answer.status_code == 302 and service.registered_seal(person.id) is None
    scan = io.BytesIO()
    Image.open(io.BytesIO(seals.impression_png("印鑑"))).convert("RGB").save(scan, format="JPEG")
    answer = _post(
        client, url, {"action": "register", "impression": (io.BytesIO(scan.getvalue()), "scan.jpg")}
    )
    assert answer.status_code == 302
    seal = service.registered_seal(person.id)
    assert (
        seal is not None
        and seal.image_png.startswith(b"\x89PNG")
        and seal.registered_by.endswith(clerk.login_id)
    )
    page = client.get(url).get_data(as_text=True)
    assert "data:image/png;base64," in page and seal.registration_no in page
    assert service.offer(person, "seal").refusal is None

    _post(client, url, {"action": "register", "generate": "1"})  # a second registration is refused
    assert (
        len(
            db.session.scalars(
                select(SealRegistration).where(SealRegistration.resident_id == person.id)
            ).all()
        )
        == 1
    )

    _post(client, url, {"action": "abolish"})
    db.session.expire_all()
    assert service.registered_seal(person.id) is None
    assert service.offer(person, "seal").refusal == "no_seal"
    _post(client, url, {"action": "register", "generate": "1"})  # registered again, a new number
    numbers = db.session.scalars(
        select(SealRegistration.registration_no).where(SealRegistration.resident_id == person.id)
    )
    assert len(set(numbers)) == 2
    records = db.session.scalars(
        select(AccessRecord).where(
            AccessRecord.resident_id == person.id, AccessRecord.purpose == "seal_registration"
        )
    ).all()
    assert records and all(r.actor_id == clerk.login_id for r in records)


def test_other_roles_refused(app, client, db):
    person = make_resident()
    author = make_staff(roles=["author"])
    db.session.commit()
    login_staff(client, author)
    assert client.get(f"/staff/residents/{person.id}/seal").status_code == 403
