"""The public check of a certificate: /verify (ja/en) and /api/certificates/verify — valid,
revoked or unknown, with the kind and issue date and never the personal data; rate limited."""

from __future__ import annotations

import pytest

from portal.certificates import service
from tests.factories import csrf_from

from .conftest import paid


@pytest.fixture
def issued(app, family):
    return service.issue(family[0], "seal", payment_id=paid(200), actor="kiosk:test")


def test_api_answers(client, issued):
    answer = client.get(f"/api/certificates/verify?serial={issued.serial}&code={issued.verify_code}")
    body = answer.get_json()
    assert answer.status_code == 200
    assert body["status"] == "valid" and body["kind"] == "seal" and body["issued_on"]
    assert set(body) == {"status", "kind", "issued_on"}
    # the code is forgiving about case, spaces and the hyphen; POST JSON works too
    loose = issued.verify_code.lower().replace("-", " ")
    assert (
        client.post(
            "/api/certificates/verify", json={"serial": issued.serial.lower(), "code": loose}
        ).get_json()["status"]
        == "valid"
    )
    for serial, code in ((issued.serial, "AAAA-AAAA"), ("R000000-AAAA-AAAA", issued.verify_code)):
        assert client.get(f"/api/certificates/verify?serial={serial}&code={code}").get_json() == {
            "status": "unknown"
        }
    for bad in ({}, {"serial": issued.serial}, {"serial": 5, "code": "x"}):
        answer = client.post("/api/certificates/verify", json=bad)
        assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "bad_request"
    service.revoke(issued.serial, "reissued at the counter")
    body = client.get(f"/api/certificates/verify?serial={issued.serial}&code={issued.verify_code}").get_json()
    assert body["status"] == "revoked" and body["kind"] == "seal"


def test_page_in_both_languages(client, issued):
    query = f"/verify?serial={issued.serial}&code={issued.verify_code}"
    page = client.get(query).get_data(as_text=True)
    assert "有効" in page and "印鑑登録証明書" in page and "令和" in page
    assert "山田" not in page  # no personal data
    client.post("/lang", data={"lang": "en", "csrf_token": csrf_from(page)})
    page = client.get(query).get_data(as_text=True)
    assert "Valid" in page and "Seal registration certificate" in page
    unknown = client.get(f"/verify?serial={issued.serial}&code=ZZZZ-ZZZZ").get_data(as_text=True)
    assert "Not found" in unknown and "Valid" not in unknown
    empty = client.get("/verify?serial=&code=").get_data(as_text=True)
    assert "Enter the serial number." in empty and "Enter the code." in empty
    assert 'aria-invalid="true"' in empty
    blank = client.get("/verify").get_data(as_text=True)
    assert "There is a problem" not in blank and 'name="serial"' in blank
