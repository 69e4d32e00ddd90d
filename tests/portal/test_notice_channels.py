"""Channels of the PO box: e-mail through a real SMTP server, Web Push through a local push
service that the test decrypts with the subscription's own keys, retries with back-off, no
duplicate sends after a worker dies mid-send, and the send as an RQ job on the real Redis."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from portal.models_base import utcnow
from portal.notices import channels, delivery, push_api, service
from portal.notices.models import ChannelDelivery, Delivery, Notice, NotificationSetting, PushSubscription
from tests.factories import csrf_from, login_resident, make_account, make_resident, post_form
from tests.portal.push_receiver import Browser, PushReceiver, SmtpSink, free_port


@pytest.fixture
def smtp():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def receiver():
    r = PushReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def app_config(smtp, tmp_path):
    return {
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": smtp.port,
        "PUSH_ALLOW_HTTP_ENDPOINTS": True,
        "PUSH_ENDPOINT_HOSTS": None,
        "VAPID_PRIVATE_KEY_FILE": str(tmp_path / "vapid_private.pem"),
        "VAPID_SUBJECT": "mailto:webmaster@city.example.jp",
        "DELIVERY_MAX_ATTEMPTS": 3,
    }


@pytest.fixture(autouse=True)
def registered(app):
    if "push" not in app.blueprints:  # until the app factory calls it
        push_api.init_app(app)
    push_api.init_app(app)  # a second call changes nothing
    return app


def _notice(db, *, category="health", title_en="Health check-up for {name}", **kw) -> Notice:
    notice = Notice(
        category=category,
        title_ja="{name}さんへ 健康診査のお知らせ",
        title_en=title_en,
        body_ja="本文 SECRET-BODY {name}",
        body_en="Body SECRET-BODY {name}",
        rule="{}",
        created_by="author1",
        status="approved",
        approved_by="author2",
        **kw,
    )
    db.session.add(notice)
    db.session.commit()
    return notice


def _rows(db, channel=None):
    stmt = select(ChannelDelivery).order_by(ChannelDelivery.id)
    if channel:
        stmt = stmt.where(ChannelDelivery.channel == channel)
    return list(db.session.scalars(stmt))


def _vapid_keys(app):
    result = app.test_cli_runner().invoke(args=["push", "keys"])
    assert result.exit_code == 0, result.output
    return result.output


# --- e-mail --------------------------------------------------------------------------------------


def test_email_reaches_a_real_smtp_server_with_text_html_and_a_working_unsubscribe(app, db, client, smtp):
    hanako = make_resident(given="花子")
    account = make_account(resident=hanako, email="hanako@example.jp")
    account.locale = "en"
    unverified = make_account(resident=make_resident(given="次郎"), verified=False)
    make_resident(given="無口")  # no portal account: inbox only
    db.session.commit()
    notice = _notice(db)

    delivery.send_notice(notice.id)

    assert smtp.recipients == ["hanako@example.jp"]
    msg = smtp.messages[0]
    assert msg["Subject"] == "Health check-up for 山田 花子"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    item = db.session.scalar(select(Delivery).where(Delivery.resident_id == hanako.id))
    assert (
        f"http://portal.test/me/notices/{item.id}" in text
        and f'href="http://portal.test/me/notices/{item.id}"' in html
    )
    assert "SECRET-BODY" not in text + html  # the body stays behind the login
    (row,) = _rows(db, "email")
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None) and row.sent_at
    assert not db.session.scalar(
        select(func.count())
        .select_from(ChannelDelivery)
        .join(Delivery)
        .where(Delivery.resident_id != hanako.id)
    )
    assert unverified.id  # unverified address: no e-mail row at all

    # The unsubscribe link: GET asks, POST turns e-mail for the category off.
    link = re.search(r"http://portal\.test(/unsubscribe/\S+)", text).group(1)
    assert link in html
    page = client.get(link)  # Japanese by default
    assert page.status_code == 200 and f'action="{link}"' in page.get_data(as_text=True)
    assert '<html lang="ja">' in page.get_data(as_text=True)
    client.set_cookie("lang", "en", domain="portal.test")
    page = client.get(link)
    assert "Stop e-mail for Health notices?" in page.get_data(as_text=True)
    assert not db.session.scalar(select(NotificationSetting))
    resp = client.post(link, data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert resp.status_code == 200 and "now off" in resp.get_data(as_text=True)
    setting = db.session.scalar(select(NotificationSetting))
    assert (setting.account_id, setting.category, setting.channel, setting.enabled) == (
        account.id,
        "health",
        "email",
        False,
    )
    assert client.get(link[:-3] + "xyz").status_code == 404  # a forged token

    # The next health notice goes to the inbox only; another category still goes out by e-mail.
    delivery.send_notice(_notice(db).id)
    delivery.send_notice(_notice(db, category="tax", title_en="Tax").id)
    assert [m["Subject"] for m in smtp.messages] == ["Health check-up for 山田 花子", "Tax"]


def test_a_childs_notice_reaches_the_parents_account(app, db, smtp):
    parent = make_resident(given="花子")
    make_account(resident=parent, email="parent@example.jp")
    make_resident(
        given="太郎", household=parent.household, relation="child", birth=date.today() - timedelta(days=300)
    )
    make_resident(given="大人", household=parent.household, relation="child", birth=date(1990, 1, 1))
    db.session.commit()
    notice = _notice(db)
    delivery.send_notice(notice.id)
    # in the account's language (Japanese), each filled for the resident the notice is about
    assert sorted(m["Subject"] for m in smtp.messages) == [
        "山田 太郎さんへ 健康診査のお知らせ",
        "山田 花子さんへ 健康診査のお知らせ",
    ]
    assert smtp.recipients == ["parent@example.jp"] * 2  # the adult child without an account: inbox only


def test_a_placeholder_holding_markup_is_text_in_the_html_part(app, db, smtp):
    make_account(resident=make_resident(given="<script>alert(1)</script>"))
    db.session.commit()
    delivery.send_notice(_notice(db).id)
    (msg,) = smtp.messages
    html = msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert msg["Subject"].startswith("山田 <script>")  # a subject is plain text


def test_rerunning_the_send_queues_and_sends_nothing_twice(app, db, smtp):
    for i in range(3):
        make_account(resident=make_resident(given=f"人{i}"))
    db.session.commit()
    notice = _notice(db)
    delivery.send_notice(notice.id)
    delivery.send_notice(notice.id)
    assert delivery.queue_channels(notice.id) == {"push": 0, "email": 3}
    delivery.deliver_due(now=utcnow() + timedelta(days=1))
    assert len(smtp.messages) == 3 and len(_rows(db)) == 3


# --- retries, and a worker killed mid-send -------------------------------------------------------


def test_flask_push_deliver_sends_what_is_due(app, db, smtp):
    make_account(resident=make_resident(), email="cli@example.jp")
    db.session.commit()
    notice = _notice(db)
    service.fan_out(notice.id)
    delivery.queue_channels(notice.id)
    result = app.test_cli_runner().invoke(args=["push", "deliver"])
    assert result.exit_code == 0, result.output
    assert "'sent': 1" in result.output and smtp.recipients == ["cli@example.jp"]
    assert "cli@example.jp" not in result.output


def test_failures_are_retried_with_back_off_then_failed_without_personal_data(app, db):
    app.config["SMTP_PORT"] = free_port()  # nobody listens
    make_account(resident=make_resident(), email="retry@example.jp")
    db.session.commit()
    notice = _notice(db)
    start = utcnow()
    delivery.send_notice(notice.id)
    (row,) = _rows(db)
    assert (row.status, row.attempts) == ("queued", 1)
    assert row.last_error == "smtp_ConnectionRefusedError"
    first_wait = row.next_attempt_at - start
    assert timedelta(seconds=55) < first_wait < timedelta(seconds=70)
    assert delivery.deliver_due() == {}  # not due yet

    delivery.deliver_due(now=row.next_attempt_at)
    db.session.refresh(row)
    assert (row.status, row.attempts) == ("queued", 2)
    assert row.next_attempt_at - utcnow() > timedelta(seconds=110)  # doubled

    delivery.deliver_due(now=row.next_attempt_at)
    db.session.refresh(row)
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "smtp_ConnectionRefusedError")
    assert "@" not in row.last_error
    assert delivery.deliver_due(now=utcnow() + timedelta(days=30)) == {}  # failed stays failed


class Killed(BaseException):
    """The worker process dies (SIGKILL): nothing after this line runs, no handler catches it."""


def test_a_worker_killed_mid_send_and_rerun_sends_nothing_twice(app, db, smtp, monkeypatch):
    for i in range(4):
        make_account(resident=make_resident(given=f"人{i}"), email=f"r{i}@example.jp")
    db.session.commit()
    notice = _notice(db)
    service.fan_out(notice.id)
    delivery.queue_channels(notice.id)

    real = delivery.SENDERS["email"]
    calls = []

    def dies_after_the_second_mail(**kw):
        real(**kw)
        calls.append(kw["delivery_id"])
        if len(calls) == 2:
            raise Killed  # the SMTP server has the mail; the row was never marked sent

    monkeypatch.setitem(delivery.SENDERS, "email", dies_after_the_second_mail)
    with pytest.raises(Killed):
        delivery.deliver_due()
    db.session.rollback()
    assert sorted(r.status for r in _rows(db)) == ["claimed", "claimed", "sending", "sent"]
    assert len(smtp.messages) == 2

    monkeypatch.setitem(delivery.SENDERS, "email", real)
    delivery.deliver_due()  # at once: the dead worker's lease still holds, nothing is taken
    assert len(smtp.messages) == 2
    later = utcnow() + timedelta(seconds=app.config.get("DELIVERY_LEASE_SECONDS", 300) + 1)
    delivery.send_notice(notice.id)  # the whole job re-run
    delivery.deliver_due(now=later)
    statuses = sorted((r.status, r.last_error) for r in _rows(db))
    assert statuses == [("failed", "interrupted"), ("sent", None), ("sent", None), ("sent", None)]
    assert sorted(smtp.recipients) == [f"r{i}@example.jp" for i in range(4)]  # each exactly once


WORKER = """
import sys
from wsgi import create_app
from portal.notices import delivery
app = create_app({"NAME": "test", "SQLALCHEMY_DATABASE_URI": sys.argv[1], "MAIL_BACKEND": "smtp",
                  "SMTP_HOST": "127.0.0.1", "SMTP_PORT": int(sys.argv[2]), "SERVER_NAME": "portal.test"})
with app.app_context():
    print(delivery.deliver_due(), flush=True)
"""


def test_a_worker_process_sigkilled_mid_send_and_rerun_sends_nothing_twice(
    app, db, database_url, monkeypatch
):
    """The real thing: a worker process is SIGKILLed while the SMTP server holds its second
    message (received, 250 not yet answered); the re-run sends the rest, each address once."""
    sink = SmtpSink(hold_at=2).start()
    try:
        for i in range(4):
            make_account(resident=make_resident(given=f"人{i}"), email=f"k{i}@example.jp")
        db.session.commit()
        notice = _notice(db)
        service.fan_out(notice.id)
        delivery.queue_channels(notice.id)
        db.session.commit()
        root = Path(__file__).resolve().parents[2]
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, database_url, str(sink.port)],
            cwd=root,
            env={**os.environ, "PORTAL_CONFIG": "test", "PYTHONPATH": str(root)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert sink.held.wait(60), worker.communicate(timeout=5)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
            worker.stdout.close()
            worker.stderr.close()
        sink.release.set()
        assert worker.returncode == -signal.SIGKILL and len(sink.messages) == 2
        db.session.expire_all()
        assert sorted(r.status for r in _rows(db)) == ["claimed", "claimed", "sending", "sent"]

        app.config["SMTP_PORT"] = sink.port
        delivery.send_notice(notice.id)  # the job re-run: the dead worker's rows are leased
        assert len(sink.messages) == 2
        later = utcnow() + timedelta(seconds=301)
        delivery.deliver_due(now=later)
        assert sorted(sink.recipients) == [f"k{i}@example.jp" for i in range(4)]  # each exactly once
        assert sorted((r.status, r.last_error) for r in _rows(db)) == [
            ("failed", "interrupted"),
            ("sent", None),
            ("sent", None),
            ("sent", None),
        ]
    finally:
        sink.stop()


def test_two_workers_never_send_the_same_row(app, db, smtp, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one worker")
    for i in range(30):
        make_account(resident=make_resident(given=f"人{i}"), email=f"w{i}@example.jp")
    db.session.commit()
    notice = _notice(db)
    service.fan_out(notice.id)
    delivery.queue_channels(notice.id)
    app.config["DELIVERY_BATCH"] = 3
    errors = []

    def worker():
        try:
            with app.app_context():
                delivery.deliver_due()
                from portal.extensions import db as wdb

                wdb.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(smtp.recipients) == sorted(f"w{i}@example.jp" for i in range(30))
    assert {r.status for r in _rows(db)} == {"sent"}


# --- Web Push ------------------------------------------------------------------------------------


def _subscribe(client, account, subscription) -> int:
    login_resident(client, account)
    token = csrf_from(client.get("/", follow_redirects=True).get_data(as_text=True))
    resp = client.post("/api/push/subscriptions", json=subscription, headers={"X-CSRFToken": token})
    assert resp.status_code in (200, 201), resp.get_data(as_text=True)
    return resp.status_code


def test_push_payload_is_encrypted_for_the_subscription(app, db, client, receiver, tmp_path):
    out = _vapid_keys(app)
    assert "made" in out
    pem = (tmp_path / "vapid_private.pem").read_bytes()
    assert "kept" in _vapid_keys(app) and (tmp_path / "vapid_private.pem").read_bytes() == pem
    assert oct((tmp_path / "vapid_private.pem").stat().st_mode & 0o777) == "0o600"
    key = client.get("/api/push/key").get_json()["key"]
    assert key in out and len(key) == 87

    resident = make_resident(given="花子")
    account = make_account(resident=resident)
    db.session.commit()
    browser = Browser()
    assert _subscribe(client, account, browser.subscription(receiver.base + "/push/abc")) == 201

    notice = _notice(db, category="disaster", title_en="Evacuation advice")
    delivery.send_notice(notice.id)

    (got,) = receiver.received
    assert got.path == "/push/abc"
    assert got.headers["content-encoding"] == "aes128gcm"
    assert got.headers["ttl"] == "86400" and got.headers["urgency"] == "high"
    assert got.headers["authorization"].startswith("vapid t=") and f"k={key}" in got.headers["authorization"]
    assert b"SECRET" not in got.body and "花子".encode() not in got.body
    payload = json.loads(browser.decrypt(got.body))
    item = db.session.scalar(select(Delivery).where(Delivery.resident_id == resident.id))
    assert payload["title"] == "山田 花子さんへ 健康診査のお知らせ"
    assert payload["url"] == f"http://portal.test/me/notices/{item.id}"
    assert set(payload) == {"title", "url", "tag", "category"}
    with pytest.raises(Exception):  # noqa: B017 - another browser's keys cannot read it
        Browser().decrypt(got.body)
    (row,) = _rows(db, "push")
    assert row.status == "sent"
    assert db.session.scalar(select(PushSubscription)).last_success_at is not None


def test_subscription_answered_410_or_404_is_removed(app, db, client, receiver):
    _vapid_keys(app)
    account = make_account(resident=make_resident())
    db.session.commit()
    _subscribe(client, account, Browser().subscription(receiver.base + "/gone"))
    _subscribe(client, account, Browser().subscription(receiver.base + "/missing"))
    _subscribe(client, account, Browser().subscription(receiver.base + "/ok"))
    receiver.status.update({"/gone": 410, "/missing": 404})
    delivery.send_notice(_notice(db).id)
    assert [s.endpoint for s in db.session.scalars(select(PushSubscription))] == [receiver.base + "/ok"]
    assert _rows(db, "push")[0].status == "sent"

    receiver.status["/ok"] = 410
    delivery.send_notice(_notice(db).id)
    assert not db.session.scalar(select(func.count()).select_from(PushSubscription))
    assert (_rows(db, "push")[1].status, _rows(db, "push")[1].last_error) == (
        "failed",
        "push_subscription_gone",
    )


def test_push_service_errors_are_retried(app, db, client, receiver):
    _vapid_keys(app)
    account = make_account(resident=make_resident())
    db.session.commit()
    _subscribe(client, account, Browser().subscription(receiver.base + "/busy"))
    receiver.status["/busy"] = 503
    delivery.send_notice(_notice(db).id)
    (row,) = _rows(db, "push")
    assert (row.status, row.attempts, row.last_error) == ("queued", 1, "push_http_503")
    receiver.status["/busy"] = 201
    delivery.deliver_due(now=row.next_attempt_at)
    db.session.refresh(row)
    assert (row.status, row.attempts) == ("sent", 2) and len(receiver.received) == 2


def test_turned_off_push_category_is_not_queued(app, db, client, receiver):
    _vapid_keys(app)
    account = make_account(resident=make_resident())
    db.session.add(
        NotificationSetting(account_id=account.id, category="event", channel="push", enabled=False)
    )
    db.session.commit()
    _subscribe(client, account, Browser().subscription(receiver.base + "/p"))
    delivery.send_notice(_notice(db, category="event").id)
    delivery.send_notice(_notice(db, category="health").id)
    assert [r.channel for r in _rows(db, "push")] == ["push"] and len(receiver.received) == 1


# --- the subscription API and the service worker -------------------------------------------------


def test_subscription_api_needs_a_login_csrf_and_valid_keys(app, db, client, receiver):
    sub = Browser().subscription(receiver.base + "/x")
    assert client.post("/api/push/subscriptions", json=sub).status_code in (400, 401)
    account = make_account(resident=make_resident())
    other = make_account(resident=make_resident())
    db.session.commit()
    login_resident(client, account)
    assert client.post("/api/push/subscriptions", json=sub).status_code == 400  # no CSRF header
    token = csrf_from(client.get("/", follow_redirects=True).get_data(as_text=True))
    h = {"X-CSRFToken": token}
    bad = {**sub, "keys": {"p256dh": "AAAA", "auth": sub["keys"]["auth"]}}
    assert client.post("/api/push/subscriptions", json=bad, headers=h).status_code == 400
    app.config["PUSH_ALLOW_HTTP_ENDPOINTS"] = False
    assert client.post("/api/push/subscriptions", json=sub, headers=h).status_code == 400  # http refused
    app.config["PUSH_ALLOW_HTTP_ENDPOINTS"] = True
    app.config.pop("PUSH_ENDPOINT_HOSTS")  # the default list: known push services only
    for endpoint in (
        "https://127.0.0.1/x",
        "https://fcm.googleapis.com.evil.example/x",
        "https://u:p@fcm.googleapis.com/x",
    ):
        resp = client.post("/api/push/subscriptions", json={**sub, "endpoint": endpoint}, headers=h)
        assert resp.status_code == 400, endpoint
    for endpoint in (
        "https://fcm.googleapis.com/fcm/send/a",
        "https://updates.push.services.mozilla.com/wpush/v2/b",
    ):
        resp = client.post("/api/push/subscriptions", json={**sub, "endpoint": endpoint}, headers=h)
        assert resp.status_code == 201, endpoint
    db.session.execute(delete(PushSubscription))
    db.session.commit()
    app.config["PUSH_ENDPOINT_HOSTS"] = None
    assert client.post("/api/push/subscriptions", json=sub, headers=h).status_code == 201
    assert client.post("/api/push/subscriptions", json=sub, headers=h).status_code == 200  # same endpoint
    assert db.session.scalar(select(PushSubscription.account_id)) == account.id
    # Another account cannot remove it; its owner can.
    other_client = app.test_client()
    login_resident(other_client, other)
    other_token = csrf_from(other_client.get("/", follow_redirects=True).get_data(as_text=True))
    resp = other_client.delete(
        "/api/push/subscriptions", json={"endpoint": sub["endpoint"]}, headers={"X-CSRFToken": other_token}
    )
    assert resp.get_json()["removed"] == 0
    resp = client.delete("/api/push/subscriptions", json={"endpoint": sub["endpoint"]}, headers=h)
    assert resp.get_json()["removed"] == 1
    assert not db.session.scalar(select(func.count()).select_from(PushSubscription))


def test_service_worker_is_served_at_the_root_and_the_key_is_public(app, client):
    resp = client.get("/sw.js")
    assert resp.status_code == 200
    assert resp.headers["Service-Worker-Allowed"] == "/"
    assert resp.mimetype == "text/javascript"
    assert b"showNotification" in resp.data
    assert client.get("/api/push/key").status_code == 503  # no key made yet
    _vapid_keys(app)
    assert client.get("/api/push/key").get_json()["key"] == channels.application_server_key()


def test_unsubscribe_link_needs_no_login_and_names_a_known_category(app, db, client):
    account = make_account(resident=make_resident())
    db.session.commit()
    token = channels.unsubscribe_token(account.id, "tax")
    resp = post_form(client, f"/unsubscribe/{token}", {})
    assert resp.status_code == 200
    assert db.session.scalar(select(NotificationSetting.enabled)) is False
    assert client.get("/unsubscribe/" + channels.unsubscribe_token(account.id, "nope")).status_code == 404


# --- RQ on the real Redis ------------------------------------------------------------------------


def test_send_notice_runs_as_an_rq_job_in_an_app_context(app, db, smtp, redis_url, database_url, monkeypatch):
    from redis import Redis
    from rq import Queue, SimpleWorker

    make_account(resident=make_resident(), email="rq@example.jp")
    db.session.commit()
    notice = _notice(db)
    queue_name = f"test-{uuid.uuid4()}"
    app.config.update(JOBS_INLINE=False, REDIS_URL=redis_url, JOBS_QUEUE=queue_name)
    # The worker builds its own app (portal.jobs.run_in_app) from the environment.
    for key, value in {
        "DATABASE_URL": database_url,
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
    }.items():
        monkeypatch.setenv(key, value)

    job = delivery.schedule_send(notice.id)
    assert job.id == f"send-notice-{notice.id}" and smtp.messages == []
    connection = Redis.from_url(redis_url)
    try:
        queue = Queue(queue_name, connection=connection)
        assert SimpleWorker([queue], connection=connection).work(burst=True)
        job.refresh()
        assert job.get_status() == "finished", job.latest_result().exc_string
        assert job.return_value() == {"sent": 1}
    finally:
        Queue(queue_name, connection=connection).delete(delete_jobs=True)
        connection.close()
    db.session.expire_all()
    assert smtp.recipients == ["rq@example.jp"]
    assert db.session.get(Notice, notice.id).status == "sent"
    assert [r.status for r in _rows(db)] == ["sent"]
