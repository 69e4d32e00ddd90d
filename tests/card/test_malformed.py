"""Malformed card answers (truncated, wrong lengths, garbage) raise CardError — never a crash or hang."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from card import errors
from card.session import CardSession
from card.sim import Profile, VirtualCard
from card.transport import SimTransport


def operations(session: CardSession) -> None:
    session.read_token()
    session.read_auth_certificate()
    session.sign_auth(b"m", "1234", allow_last_try=True)
    session.read_text_ap("1234", allow_last_try=True)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda r: r[:-2],  # no status word
        lambda r: r[:1],
        lambda r: b"",
        lambda r: r[: max(0, len(r) - 40)] + r[-2:],  # truncated data, SW kept
        lambda r: r[:-2] + r[:-2] + r[-2:],  # too much data
        lambda r: bytes(len(r)),  # zeros
        lambda r: b"\xff" * 300 + b"\x90\x00",
        lambda r: r[:-2] + b"\x61\x10",  # endless GET RESPONSE chain
        lambda r: r[:-2] + b"\x6c\x00",
        lambda r: r[:-2] + b"\x12\x34",  # invalid SW1
    ],
)
def test_every_mangled_answer_is_a_card_error(profile: Profile, mangle) -> None:  # type: ignore[no-untyped-def]
    card = VirtualCard.from_profile(profile.directory)
    session = CardSession(SimTransport(card))
    card.fault = lambda command, response: mangle(response)
    with pytest.raises(errors.CardError):
        operations(session)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), rate=st.floats(0.05, 1.0))
def test_random_corruption_never_crashes(profile: Profile, seed: int, rate: float) -> None:
    rng = random.Random(seed)
    card = VirtualCard.from_profile(profile.directory)

    def corrupt(command: bytes, response: bytes) -> bytes:
        if rng.random() > rate:
            return response
        choice = rng.randrange(4)
        if choice == 0:
            return response[: rng.randrange(len(response) + 1)]
        if choice == 1:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        if choice == 2:
            data = bytearray(response)
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            return bytes(data)
        return response[:-2] + bytes((rng.choice([0x61, 0x6C, 0x63, 0x69, 0x90]), rng.randrange(256)))

    try:
        session = CardSession(SimTransport(card))
        card.fault = corrupt
        operations(session)
    except errors.CardError as exc:
        assert "999912345677" not in str(exc)
    except ValueError as exc:  # only the documented argument errors
        pytest.fail(f"unexpected ValueError: {exc}")
