"""The load scenario for ``bench/load.py`` (locust): residents reading their PO box and booking,
kiosks verifying cards, partners awarding and redeeming points over the OAuth2 API, against make
deploy-local through nginx and TLS.

Who is who comes from the JSON file named by ``PORTAL_LOAD_FIXTURE`` (bench/load.py writes it):
resident logins, bookable slots, card certificates with their keys.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import re
import threading
from pathlib import Path

from locust import HttpUser, between, task

_FIXTURE_FILE = os.environ.get("PORTAL_LOAD_FIXTURE")
FIXTURE = json.loads(Path(_FIXTURE_FILE).read_text()) if _FIXTURE_FILE else {}
_next = itertools.count()
_lock = threading.Lock()
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _prepare(client) -> None:
    client.trust_env = False
    client.verify = FIXTURE.get("cert", True)
    client.headers["Referer"] = FIXTURE.get("host", "") + "/"


class Resident(HttpUser):
    """Logs in once, then reads the inbox, opens a notice, looks for slots, books and cancels."""

    weight = 6
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        _prepare(self.client)
        with _lock:
            n = next(_next)
        self.login = FIXTURE["residents"][n % len(FIXTURE["residents"])]
        page = self.client.get("/login", name="/login")
        token = CSRF.search(page.text).group(1)
        self.client.post(
            "/login",
            data={"csrf_token": token, "email": self.login["email"], "password": FIXTURE["password"]},
            name="/login [POST]",
            allow_redirects=False,
        )
        self.token = token
        self.deliveries: list[int] = []

    @task(5)
    def inbox(self) -> None:
        r = self.client.get("/me/notices/", name="/me/notices/")
        self.deliveries = [int(x) for x in re.findall(r'href="/me/notices/(\d+)"', r.text)][:20]

    @task(2)
    def open_notice(self) -> None:
        if self.deliveries:
            self.client.get(f"/me/notices/{random.choice(self.deliveries)}", name="/me/notices/<id>")

    @task(2)
    def bookings(self) -> None:
        self.client.get("/me/bookings/", name="/me/bookings/")

    @task(2)
    def slots(self) -> None:
        slot = random.choice(FIXTURE["slots"])
        self.client.get(
            f"/me/bookings/slots?service={slot['service']}&date={slot['date']}", name="/me/bookings/slots"
        )

    @task(1)
    def book_and_cancel(self) -> None:
        slot = random.choice(FIXTURE["slots"])
        page = self.client.get("/me/bookings/", name="/me/bookings/")
        token = CSRF.search(page.text)
        data = {"csrf_token": token.group(1) if token else self.token, "slot": slot["id"]}
        data.update(service=slot["service"], date=slot["date"])
        with self.client.post(
            "/me/bookings/",
            data=data,
            name="/me/bookings/ [POST]",
            allow_redirects=False,
            catch_response=True,
        ) as r:
            if r.status_code == 409:  # full or already booked: a right answer under load
                r.success()
                return
            where = r.headers.get("Location", "")
        found = re.search(r"/me/bookings/(\d+)", where)
        if found:
            self.client.post(
                f"/me/bookings/{found.group(1)}/cancel",
                data={"csrf_token": data["csrf_token"]},
                name="/me/bookings/<id>/cancel",
                allow_redirects=False,
            )


class Kiosk(HttpUser):
    """A terminal verifying a resident's card: a challenge, the card's signature, the server's check."""

    weight = 2
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        from cryptography.hazmat.primitives import serialization

        _prepare(self.client)
        with _lock:
            n = next(_next)
        card = FIXTURE["cards"][n % len(FIXTURE["cards"])]
        self.cert = card["certificate"]
        self.key = serialization.load_pem_private_key(card["key"].encode(), None)
        page = self.client.get("/login", name="/login")
        self.token = CSRF.search(page.text).group(1)

    @task
    def verify_card(self) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        ch = self.client.post(
            "/api/card/challenges",
            json={"purpose": "login"},
            headers={"X-CSRFToken": self.token},
            name="/api/card/challenges",
        ).json()
        signature = self.key.sign(base64.b64decode(ch["message"]), padding.PKCS1v15(), hashes.SHA256())
        self.client.post(
            "/api/card/responses",
            json={
                "challenge": ch["id"],
                "code": ch["code"],
                "certificate": self.cert,
                "signature": base64.b64encode(signature).decode(),
            },
            name="/api/card/responses",
        )


class Partner(HttpUser):
    """A partner shop's till: one client-credentials token, then awards and redemptions for its
    members, each write with its own Idempotency-Key."""

    weight = 2
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        _prepare(self.client)
        partner = FIXTURE["partner"]
        self.members = partner["members"]
        r = self.client.post(
            "/api/points/oauth/token",
            data={"grant_type": "client_credentials", "scope": "read award redeem"},
            auth=(partner["client_id"], partner["secret"]),
            name="/api/points/oauth/token",
        )
        self.auth = {"Authorization": f"Bearer {r.json().get('access_token', '')}"}

    def _write(self, kind: str, points: int) -> None:
        import uuid

        member = random.choice(self.members)
        key = uuid.uuid4().hex
        self.client.post(
            f"/api/points/members/{member}/{kind}",
            json={"points": points, "reference": key[:16]},
            headers={**self.auth, "Idempotency-Key": key},
            name=f"/api/points/members/<id>/{kind}",
        )

    @task(3)
    def award(self) -> None:
        self._write("awards", random.randint(1, 50))

    @task(1)
    def redeem(self) -> None:
        self._write("redemptions", random.randint(1, 20))

    @task(1)
    def balance(self) -> None:
        self.client.get(
            f"/api/points/members/{random.choice(self.members)}/balance",
            headers=self.auth,
            name="/api/points/members/<id>/balance",
        )


class Health(HttpUser):
    """Only for the raw figure bench/load.py measures first (it names the classes each run uses)."""

    weight = 1
    wait_time = between(0, 0)

    def on_start(self) -> None:
        _prepare(self.client)

    @task
    def healthz(self) -> None:
        self.client.get("/healthz", name="/healthz")


if __name__ == "__main__":
    print("the load scenario: run bench/load.py")
