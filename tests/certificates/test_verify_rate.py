"""The public check is rate limited (per client address), page and API alike."""

from __future__ import annotations

import pytest

from portal.certificates import service

from .conftest import paid


@pytest.fixture
def app_config(city_hsm) -> dict:
    return {
        "CERTIFICATE_HSM_DIR": str(city_hsm.directory),
        "RATELIMIT_ENABLED": True,
        "CERTIFICATE_VERIFY_RATE_LIMIT": "3 per minute",
    }


def test_rate_limited(app, client, family):
    from portal.extensions import limiter

    limiter.reset()
    issued = service.issue(family[0], "seal", payment_id=paid(200), actor="kiosk:test")
    codes = [
        client.get(f"/api/certificates/verify?serial={issued.serial}&code=AAAA-AAA{i}").status_code
        for i in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]
    answer = client.get(f"/api/certificates/verify?serial={issued.serial}&code={issued.verify_code}")
    assert answer.status_code == 429 and answer.get_json()["error"]["code"] == 429
