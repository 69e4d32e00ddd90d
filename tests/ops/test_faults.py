"""Faults the deploy-local shape survives: Redis down while a notice is approved, a worker killed in
the middle of a send, PostgreSQL restarted under residents' writes. Each prints its figures."""

from __future__ import annotations

import base64
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import Deploy, SmtpSink, csrf_token, wait_for
from .seed import PASSWORD

# one worker runs every test here: they share one deployment and stop its services
pytestmark = pytest.mark.xdist_group("deploy")


@pytest.fixture(scope="module")
def residents(deploy: Deploy) -> int:
    """Every resident gets a verified account; returns how many a notice to everyone reaches."""
    deploy.seed("accounts")
    return deploy.scalar("SELECT count(*) FROM residents WHERE status = 'active'")


# booking's "already_booked" answer, in either language
ALREADY_BOOKED = ("You already have a booking at that time.", "その時間にはすでにご予約があります。")


def approve(deploy: Deploy, notice_id: int) -> int:
    staff = deploy.login("approver1", "staff-demo-2026", staff=True)
    page = staff.get(f"{deploy.url}/staff/notices/{notice_id}")
    answer = staff.post(
        f"{deploy.url}/staff/notices/{notice_id}/approve",
        data={"csrf_token": csrf_token(page.text)},
        allow_redirects=False,
    )
    return answer.status_code


def mail_for(sink: SmtpSink, title: str) -> Counter:
    return Counter({to: n for (to, subject), n in sink.received().items() if title in subject})


def channel_rows(deploy: Deploy, notice_id: int) -> dict[str, int]:
    with deploy.db() as conn:
        rows = conn.execute(
            "SELECT c.status, count(*) FROM channel_deliveries c JOIN deliveries d ON d.id = c.delivery_id "
            "WHERE d.notice_id = %s AND c.channel = 'email' GROUP BY c.status",
            (notice_id,),
        ).fetchall()
    return dict(rows)


def test_redis_down_notices_wait_and_go_out_once(deploy: Deploy, smtp_sink: SmtpSink, residents: int) -> None:
    title = "Redis停止試験"
    notice_id = int(deploy.seed("notice", title))
    deploy.local("redis-stop")
    try:
        s = deploy.session()
        ready = s.get(f"{deploy.url}/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("unreachable")
        assert s.get(f"{deploy.url}/login").status_code == 200  # pages work without Redis
        started = time.monotonic()
        assert approve(deploy, notice_id) == 302  # approved; the send waits for the queue
        assert deploy.scalar("SELECT status FROM notices WHERE id = %s", notice_id) == "approved"
        time.sleep(9)  # the scheduler tries (every 8 s) and leaves it while Redis is down
        assert mail_for(smtp_sink, title) == Counter()
        down_for = time.monotonic() - started
    finally:
        deploy.local("redis-start")
    back = time.monotonic()
    wait_for(
        lambda: sum(mail_for(smtp_sink, title).values()) >= residents, timeout=90, what="the notice's mail"
    )
    caught_up = time.monotonic() - back
    time.sleep(9)  # another scheduler round: nothing more goes out
    got = mail_for(smtp_sink, title)
    assert len(got) == residents and max(got.values()) == 1
    assert channel_rows(deploy, notice_id) == {"sent": residents}
    print(
        f"\nredis down {down_for:.1f}s: 0 sent while down; {residents} e-mails within {caught_up:.1f}s "
        f"of its return, 0 duplicates"
    )


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        out += [int(c) for c in children]
    return out


def test_worker_killed_mid_send_finishes_without_duplicates(
    deploy: Deploy, smtp_sink: SmtpSink, residents: int
) -> None:
    title = "ワーカー停止試験"
    notice_id = int(deploy.seed("notice", title))
    smtp_sink.delay = 0.05  # ~20 e-mails a second: the send takes a while
    try:
        assert approve(deploy, notice_id) == 302
        wait_for(lambda: sum(mail_for(smtp_sink, title).values()) >= 20, timeout=60, what="the send to start")
        # the worker (and the work horse it forked for the job) die at once, as on an OOM kill
        [supervisor] = deploy.pids("worker-")
        worker = _children(supervisor)
        victims = worker + [c for w in worker for c in _children(w)]
        assert victims, "no worker process"
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        at_kill = sum(mail_for(smtp_sink, title).values())
        killed = time.monotonic()
        wait_for(
            lambda: (
                set(channel_rows(deploy, notice_id)) <= {"sent", "failed"}
                and sum(channel_rows(deploy, notice_id).values()) == residents
            ),
            timeout=120,
            what="every row sent or failed",
        )
        finished = time.monotonic() - killed
    finally:
        smtp_sink.delay = 0.0
    rows = channel_rows(deploy, notice_id)
    got = mail_for(smtp_sink, title)
    assert max(got.values()) == 1, "an e-mail went out twice"
    # a row caught between "sending" and "sent" is failed ("interrupted"), never sent again
    assert rows.get("failed", 0) <= len(victims)
    assert rows["sent"] + rows.get("failed", 0) == residents
    assert rows["sent"] <= len(got) <= residents
    # the whole send again (a re-run of the job) adds nothing
    deploy.python(
        "from wsgi import create_app\n"
        "from portal.notices.delivery import send_notice\n"
        f"app = create_app()\nwith app.app_context(): send_notice({notice_id})\n"
    )
    assert deploy.scalar("SELECT count(*) FROM deliveries WHERE notice_id = %s", notice_id) == residents
    assert mail_for(smtp_sink, title) == got
    print(
        f"\nworker killed after {at_kill}/{residents} e-mails: finished {finished:.1f}s later by the "
        f"scheduler; sent {rows['sent']}, failed (interrupted) {rows.get('failed', 0)}, duplicates 0"
    )


def _subscription(client: int, n: int) -> dict:
    p256dh = base64.urlsafe_b64encode(b"\x04" + bytes([client, n]) * 32).rstrip(b"=").decode()
    auth = base64.urlsafe_b64encode(bytes(16)).rstrip(b"=").decode()
    return {
        "endpoint": f"https://fcm.googleapis.com/fcm/send/ops-{client}-{n}",
        "keys": {"p256dh": p256dh, "auth": auth},
    }


def test_postgres_restart_under_writes_loses_and_doubles_nothing(deploy: Deploy, residents: int) -> None:
    notice_id = int(deploy.seed("notice", "PostgreSQL再起動試験", "attend"))
    # Approved and fanned out in one transaction: the deployment's scheduler never sees it approved
    # and unsent, so it cannot fan it out and send it first (fan_out would then refuse a sent one).
    deploy.python(
        "from wsgi import create_app\nfrom portal.extensions import db\n"
        "from portal.notices.models import Notice\nfrom portal.notices.service import fan_out\n"
        "app = create_app()\nwith app.app_context():\n"
        f"    n = db.session.get(Notice, {notice_id})\n"
        "    n.status, n.approved_by = 'approved', 'approver1'\n"
        f"    fan_out({notice_id})\n"
    )
    with deploy.db() as conn:
        people = conn.execute(
            "SELECT a.email, d.id FROM resident_accounts a "
            "JOIN deliveries d ON d.resident_id = a.resident_id "
            "WHERE d.notice_id = %s AND a.email LIKE 'ops-%%' ORDER BY a.id LIMIT 4",
            (notice_id,),
        ).fetchall()
    clients = [(deploy.login(email, PASSWORD), delivery) for email, delivery in people]
    stop = threading.Event()
    stats: Counter = Counter()
    acknowledged: dict[str, set] = {"replies": set(), "subscriptions": set()}
    last_reply: dict[int, str] = {}
    problems: list[str] = []
    lock = threading.Lock()

    def retrying(call, what: str):
        while True:
            try:
                r = call()
            except Exception as exc:  # the connection itself (never expected: nginx stays up)
                with lock:
                    problems.append(f"{what}: {type(exc).__name__}")
                return None
            if r.status_code == 503:
                with lock:
                    stats["503"] += 1
                    if "Retry-After" not in r.headers:
                        problems.append(f"{what}: 503 without Retry-After")
                    if (
                        "/api/" in r.url
                        and r.headers.get("Content-Type", "").startswith("application/json") is False
                    ):
                        problems.append(f"{what}: 503 not JSON under /api/")
                time.sleep(0.3)
                continue
            return r

    def resident(i: int, s, delivery: int) -> None:
        page = s.get(f"{deploy.url}/me/notices/{delivery}")
        token = csrf_token(page.text)
        n = 0
        while not stop.is_set():
            option = ("attend", "absent")[n % 2]
            r = retrying(
                lambda option=option: s.post(
                    f"{deploy.url}/me/notices/{delivery}/reply",
                    data={"csrf_token": token, "option": option},
                    allow_redirects=False,
                ),
                "reply",
            )
            if r is None or r.status_code != 302:
                with lock:
                    problems.append(f"reply: {getattr(r, 'status_code', None)}")
                return
            sub = _subscription(i, n)
            j = retrying(
                lambda sub=sub: s.post(
                    f"{deploy.url}/api/push/subscriptions", json=sub, headers={"X-CSRFToken": token}
                ),
                "subscribe",
            )
            if j is None or j.status_code not in (200, 201):
                with lock:
                    problems.append(f"subscribe: {getattr(j, 'status_code', None)}")
                return
            with lock:
                last_reply[delivery] = option
                acknowledged["subscriptions"].add(sub["endpoint"])
                stats["writes"] += 2
            n += 1

    threads = [threading.Thread(target=resident, args=(i, s, d)) for i, (s, d) in enumerate(clients)]
    for t in threads:
        t.start()
    time.sleep(2)
    before = stats["writes"]
    down = time.monotonic()
    deploy.local("db-stop")
    time.sleep(3)
    deploy.local("db-start")
    outage = time.monotonic() - down
    wait_for(lambda: stats["writes"] > before + 20, timeout=60, what="writes to resume")
    stop.set()
    for t in threads:
        t.join(30)
    try:
        assert problems == []
        assert stats["503"] > 0, "no request met the outage"
        with deploy.db() as conn:
            replies = dict(
                conn.execute(
                    "SELECT r.delivery_id, r.option FROM notice_replies r "
                    "JOIN deliveries d ON d.id = r.delivery_id WHERE d.notice_id = %s",
                    (notice_id,),
                ).fetchall()
            )
            endpoints = Counter(
                e
                for (e,) in conn.execute(
                    "SELECT endpoint FROM push_subscriptions WHERE endpoint LIKE %s", ("%/ops-%",)
                )
            )
        assert replies == last_reply  # the last acknowledged answer of each resident, nothing else
        assert set(endpoints) == acknowledged["subscriptions"] and max(endpoints.values()) == 1
        print(
            f"\npostgres stopped {outage:.1f}s under {len(clients)} residents' writes: "
            f"{stats['writes']} writes acknowledged, {stats['503']} answers 503 + Retry-After (retried), "
            "0 lost, 0 doubled, 0 other errors"
        )
    finally:
        with deploy.db() as conn:  # no real push service is ever called by later tests
            conn.execute("DELETE FROM push_subscriptions WHERE endpoint LIKE %s", ("%/ops-%",))


def test_postgres_restart_under_bookings_loses_and_doubles_nothing(deploy: Deploy, residents: int) -> None:
    """Residents book appointments while PostgreSQL stops for 3 s: every booking a resident was told
    about is there once, no seat is taken twice (slot counters match the bookings), every failure
    was a 503 with Retry-After, and a retry after an answer lost in the outage says already booked."""
    with deploy.db() as conn:
        people = conn.execute(
            "SELECT a.email, a.resident_id FROM resident_accounts a WHERE a.email LIKE 'ops-%%' "
            "ORDER BY a.id DESC LIMIT 4"
        ).fetchall()
        slots = [
            (s, code, day.isoformat())
            for (s, code, day) in conn.execute(
                "SELECT s.id, v.code, (s.starts_at AT TIME ZONE 'Asia/Tokyo')::date "
                "FROM booking_slots s JOIN booking_services v ON v.id = s.service_id "
                "WHERE NOT s.closed AND s.booked < s.capacity AND v.active "
                "AND s.starts_at > now() + make_interval(hours => v.lead_hours + 1) "
                "AND s.starts_at < now() + make_interval(days => v.horizon_days - 1) ORDER BY s.id LIMIT 400"
            )
        ]
    assert len(slots) >= 40, "the demo city has bookable slots"
    clients = [(deploy.login(email, PASSWORD), rid) for email, rid in people]
    stop = threading.Event()
    stats: Counter = Counter()
    acknowledged: dict[int, set[int]] = {rid: set() for _, rid in clients}
    problems: list[str] = []
    lock = threading.Lock()

    def resident(i: int, s, rid: int) -> None:
        token = csrf_token(s.get(f"{deploy.url}/me/bookings/").text)
        mine = slots[i :: len(clients)]
        for slot, code, day in mine:
            if stop.is_set():
                return
            retried = False
            while True:
                try:
                    r = s.post(
                        f"{deploy.url}/me/bookings/",
                        data={"csrf_token": token, "slot": slot, "service": code, "date": day},
                        allow_redirects=False,
                    )
                except Exception as exc:
                    with lock:
                        problems.append(f"book: {type(exc).__name__}")
                    return
                if r.status_code == 503:
                    with lock:
                        stats["503"] += 1
                        if "Retry-After" not in r.headers:
                            problems.append("503 without Retry-After")
                    retried = True
                    time.sleep(0.3)
                    continue
                break
            if r.status_code == 302:
                with lock:
                    acknowledged[rid].add(slot)
                    stats["booked"] += 1
            elif r.status_code == 409 and retried and any(m in r.text for m in ALREADY_BOOKED):
                with lock:
                    acknowledged[rid].add(slot)  # the first try committed; its answer was lost
                    stats["already booked on retry"] += 1
            elif r.status_code == 409:
                with lock:
                    stats["slot taken"] += 1  # full meanwhile: told so, nothing written
            else:
                with lock:
                    problems.append(f"book: {r.status_code}")
                return

    threads = [threading.Thread(target=resident, args=(i, s, rid)) for i, (s, rid) in enumerate(clients)]
    for t in threads:
        t.start()
    time.sleep(2)
    before = stats["booked"]
    down = time.monotonic()
    deploy.local("db-stop")
    time.sleep(3)
    deploy.local("db-start")
    outage = time.monotonic() - down
    wait_for(
        lambda: stats["booked"] > before + 10 or not any(t.is_alive() for t in threads),
        timeout=90,
        what="bookings to resume",
    )
    stop.set()
    for t in threads:
        t.join(60)
    assert problems == []
    assert stats["503"] > 0, "no request met the outage"
    with deploy.db() as conn:
        held = {rid: set() for _, rid in clients}
        for rid, slot in conn.execute(
            "SELECT resident_id, slot_id FROM bookings WHERE status = 'booked' AND resident_id = ANY(%s)",
            ([rid for _, rid in clients],),
        ):
            held[rid].add(slot)
        mismatched = conn.execute(
            "SELECT count(*) FROM booking_slots s WHERE s.booked <> "
            "(SELECT count(*) FROM bookings b WHERE b.active_slot_id = s.id)"
        ).fetchone()[0]
    assert held == acknowledged
    assert mismatched == 0
    print(
        f"\npostgres stopped {outage:.1f}s under {len(clients)} residents booking: "
        f"{sum(len(v) for v in held.values())} bookings acknowledged and stored once, "
        f"{stats['503']} answers 503 + Retry-After (retried), "
        f"{stats['already booked on retry']} retries answered 'already booked', 0 seats doubled"
    )


def test_postgres_restart_under_point_redemptions_loses_and_doubles_nothing(deploy: Deploy) -> None:
    """A partner redeems points for four members over the API while PostgreSQL stops for 3 s: each
    failure is a JSON 503 with Retry-After; retried with the same Idempotency-Key, every redemption
    the partner was told about is in the ledger once, nothing else is, and no balance goes below 0."""
    import json

    import requests

    start_points = 80
    seeded = json.loads(deploy.seed("points-partner", "4", str(start_points)))
    api = f"{deploy.url}/api/points"
    token = deploy.session().post(
        f"{api}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "read redeem"},
        auth=(seeded["client_id"], seeded["secret"]),
        timeout=10,
    )
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    stop = threading.Event()
    stats: Counter = Counter()
    acknowledged: dict[str, set[str]] = {m["member_id"]: set() for m in seeded["members"]}
    problems: list[str] = []
    lock = threading.Lock()

    def partner_till(member: str) -> None:
        s = deploy.session()
        for k in range(start_points + 5):  # a few more than the balance: the last ones are refused
            if stop.is_set():
                return
            reference = f"ops-{member[-6:]}-{k}"
            retried = False
            while True:
                try:
                    r = s.post(
                        f"{api}/members/{member}/redemptions",
                        json={"points": 1, "reference": reference},
                        headers={**headers, "Idempotency-Key": reference},
                        timeout=30,
                    )
                except requests.RequestException as exc:
                    with lock:
                        problems.append(f"redeem: {type(exc).__name__}")
                    return
                if r.status_code == 503:
                    with lock:
                        stats["503"] += 1
                        if "Retry-After" not in r.headers or "error" not in r.json():
                            problems.append("503 without Retry-After or JSON error")
                    retried = True
                    time.sleep(0.3)
                    continue
                break
            if r.status_code == 201:
                with lock:
                    acknowledged[member].add(reference)
                    stats["redeemed"] += 1
                    if retried and r.headers.get("Idempotent-Replayed") == "true":
                        stats["replayed after the outage"] += 1
            elif r.status_code == 409 and r.json()["error"]["code"] == "insufficient_points":
                with lock:
                    stats["refused: balance"] += 1
                return
            else:
                with lock:
                    problems.append(f"redeem: {r.status_code} {r.text[:200]}")
                return

    threads = [threading.Thread(target=partner_till, args=(m,)) for m in acknowledged]
    for t in threads:
        t.start()
    wait_for(lambda: stats["redeemed"] >= 20, timeout=60, what="redemptions to start")
    before = stats["redeemed"]
    down = time.monotonic()
    deploy.local("db-stop")
    time.sleep(3)
    deploy.local("db-start")
    outage = time.monotonic() - down
    wait_for(
        lambda: stats["redeemed"] > before + 10 or not any(t.is_alive() for t in threads),
        timeout=90,
        what="redemptions to resume",
    )
    for t in threads:
        t.join(120)
    stop.set()
    assert problems == []
    assert stats["503"] > 0, "no request met the outage"
    with deploy.db() as conn:
        rows = conn.execute(
            "SELECT m.member_id, e.reference, count(*) FROM points_entries e "
            "JOIN points_accounts a ON a.id = e.account_id "
            "JOIN points_memberships m ON m.resident_id = a.resident_id "
            "JOIN points_partners p ON p.id = m.partner_id AND p.code = 'ops-test' "
            "WHERE e.kind = 'redeem' AND e.reference LIKE 'ops-%%' GROUP BY m.member_id, e.reference"
        ).fetchall()
        negative = conn.execute(
            "SELECT count(*) FROM (SELECT account_id, sum(points) AS total FROM points_entries "
            "GROUP BY account_id) t WHERE total < 0"
        ).fetchone()[0]
    stored: dict[str, set[str]] = {m: set() for m in acknowledged}
    doubled = [ref for _m, ref, n in rows if n != 1]
    for member, reference, _n in rows:
        stored[member].add(reference)
    assert doubled == []
    assert stored == acknowledged
    assert negative == 0
    assert stats["refused: balance"] == len(acknowledged)  # each member spent exactly the balance
    print(
        f"\npostgres stopped {outage:.1f}s under {len(acknowledged)} members' redemptions: "
        f"{stats['redeemed']} redemptions acknowledged and in the ledger once, "
        f"{stats['503']} answers 503 + Retry-After (retried with the same Idempotency-Key), "
        f"{stats['replayed after the outage']} replayed, 0 doubled, 0 balances below zero"
    )
