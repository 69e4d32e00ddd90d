"""The city application (IC空き領域): public reads, writes only after AES mutual authentication."""

from __future__ import annotations

import pytest

from card import errors
from card.city import CityApp, CityRecord
from card.citycrypto import AesIssuerKey
from card.sim import Profile, VirtualCard
from card.transport import SimTransport


@pytest.fixture
def app(card: VirtualCard) -> CityApp:
    city = CityApp(SimTransport(card))
    assert city.select()
    return city


def test_read_without_pin(app: CityApp) -> None:
    assert app.read(CityRecord.LIBRARY_PATRON) == "L-000123"
    assert app.read(CityRecord.POINTS_MEMBER) is None
    assert app.read_all() == {1: "L-000123"}


def test_write_after_mutual_authentication(app: CityApp, profile: Profile) -> None:
    app.authenticate(AesIssuerKey(profile.pki.city_key()))
    app.write(CityRecord.POINTS_MEMBER, "P-987654")
    app.write(CityRecord.LIBRARY_PATRON, "L-000124")
    assert app.read_all() == {1: "L-000124", 2: "P-987654"}


def test_write_refused_without_or_with_a_wrong_key(app: CityApp) -> None:
    with pytest.raises(errors.AuthenticationFailedError):
        app.write(CityRecord.POINTS_MEMBER, "P-1")
    with pytest.raises(errors.AuthenticationFailedError):
        app.authenticate(AesIssuerKey(bytes(16)))
    app._ks = bytes(16)  # a forged session cannot write either
    with pytest.raises(errors.AuthenticationFailedError):
        app.write(CityRecord.POINTS_MEMBER, "P-1")
    assert app.read(CityRecord.POINTS_MEMBER) is None


def test_session_ends_when_another_application_is_selected(
    app: CityApp, profile: Profile, card: VirtualCard
) -> None:
    from card.session import CardSession

    app.authenticate(AesIssuerKey(profile.pki.city_key()))
    CardSession(app.transport).read_token()
    app.select()
    app._ks = b"x" * 16
    with pytest.raises(errors.AuthenticationFailedError):
        app.write(CityRecord.POINTS_MEMBER, "P-1")


def test_card_without_city_app() -> None:
    assert CityApp(SimTransport(VirtualCard([]))).select() is False


def test_records_persist(tmp_path, pki_dir) -> None:  # type: ignore[no-untyped-def]
    from card.sim import make_profile

    p = make_profile(tmp_path, pki_dir=pki_dir)
    app = CityApp(SimTransport(VirtualCard.from_profile(p.directory, persist=True)))
    app.select()
    app.authenticate(AesIssuerKey(p.pki.city_key()))
    app.write(CityRecord.LIBRARY_PATRON, "L-55")
    again = CityApp(SimTransport(VirtualCard.from_profile(p.directory, persist=True)))
    again.select()
    assert again.read(CityRecord.LIBRARY_PATRON) == "L-55"
