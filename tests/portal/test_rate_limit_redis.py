"""Production keeps login rate limits in Redis, shared by every gunicorn worker: test with the real one."""

import uuid

import pytest
import redis

from tests.factories import csrf_from


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_login_limit_is_shared_through_redis(database_url, redis_url, tmp_path):
    from wsgi import create_app

    prefix = f"test-{uuid.uuid4()}"
    config = {
        "NAME": "test",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": prefix,
    }
    first, second = create_app(config), create_app(config)  # two "workers"
    codes = []
    for i in range(11):
        client = (first if i % 2 else second).test_client()
        token = csrf_from(client.get("/login").get_data(as_text=True))
        codes.append(
            client.post("/login", data={"csrf_token": token, "email": "a@b.jp", "password": "x"}).status_code
        )
    assert codes[:10] == [200] * 10 and codes[10] == 429
    # the counts live in Redis, where every worker process sees them
    assert redis.Redis.from_url(redis_url).keys(f"*{prefix}*")
