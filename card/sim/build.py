"""Assemble a :class:`VirtualCard` from a profile directory (CARD.md file map)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from card import tlv
from card.pin import JPKI_AID, SURFACE_AID, TEXT_AID
from card.sim.applet import BinaryFile, FileApplet, KeyFile, Pin
from card.sim.card import Applet, StateStore, VirtualCard
from card.sim.city import CityApplet
from card.sim.keys import load_key
from card.sim.profile import Profile

AUTH_PIN_PATTERN = r"[0-9]{4}"
SIGN_PIN_PATTERN = r"(?=.*[0-9])(?=.*[A-Z])[A-Z0-9]{6,16}"


def _pad(data: bytes, block: int = 256) -> bytes:
    """Card EFs are fixed-size and padded; readers take the length from the DER header."""
    size = -(-len(data) // block) * block
    return data + b"\xff" * (size - len(data))


def basic4_file(p: Profile, *, long_form: bool = False) -> bytes:
    """``FF 20 {DF 21 offsets, DF 22 name, DF 23 address, DF 24 birth, DF 25 sex}`` (UTF-8)."""
    b = p.basic4
    parts = [
        tlv.encode(0xDF22, b.name.encode()),
        tlv.encode(0xDF23, b.address.encode()),
        tlv.encode(0xDF24, b.birth_date.encode()),
        tlv.encode(0xDF25, b.sex.encode()),
    ]
    offsets, pos = bytearray(), 11  # DF 21 08 + 8 bytes precede the first item
    for part in parts:
        offsets += pos.to_bytes(2, "big")
        pos += len(part)
    inner = tlv.encode(0xDF21, bytes(offsets)) + b"".join(parts)
    if long_form or len(inner) > 0x7F:
        return b"\xff\x20\x82" + len(inner).to_bytes(2, "big") + inner
    return tlv.encode(0xFF20, inner)


def build_card(directory: Path, *, persist: bool = False) -> VirtualCard:
    p = Profile.load(directory)
    pki = p.pki
    store = StateStore(directory / "state.json")
    state = store.load()

    jpki = FileApplet(
        JPKI_AID,
        "jpki",
        files={
            0x0006: BinaryFile(b"JPKIAPICCTOKEN2".ljust(32, b"\x00")),
            0x000A: BinaryFile(_pad(p.certificate("auth"))),
            0x000B: BinaryFile(_pad(pki.root("auth").public_bytes(serialization.Encoding.DER))),
            0x0001: BinaryFile(_pad(p.certificate("sign")), read_pin=0x001B),
            0x0002: BinaryFile(_pad(pki.root("sign").public_bytes(serialization.Encoding.DER))),
        },
        pins={
            0x0018: Pin(p.auth_pin.encode(), 3, 3, AUTH_PIN_PATTERN),
            0x001B: Pin(p.sign_pin.encode(), 5, 5, SIGN_PIN_PATTERN),
        },
        keys={
            0x0017: KeyFile(load_key(directory / "auth_key.pem"), 0x0018),
            0x001A: KeyFile(load_key(directory / "sign_key.pem"), 0x001B, consume_pin=True),
        },
    )

    number_file = b"\xff\x10\x0c" + p.my_number.encode() + b"\xff\xff"
    basic4 = basic4_file(p)
    digest = hashlib.sha256(number_file[:15]).digest() + hashlib.sha256(basic4).digest()
    issuer_sig = pki.root_key("sign").sign(digest, padding.PKCS1v15(), hashes.SHA256())
    signed = tlv.encode(
        0xFF30,
        tlv.encode(0xDF31, digest[:32]) + tlv.encode(0xDF32, digest[32:]) + tlv.encode(0xDF33, issuer_sig),
    )
    text = FileApplet(
        TEXT_AID,
        "text",
        files={
            0x0001: BinaryFile(number_file, read_pin=0x0011),
            0x0002: BinaryFile(basic4 + b"\xff" * 8, read_pin=0x0011),
            0x0003: BinaryFile(signed, read_pin=0x0011),
        },
        pins={0x0011: Pin(p.text_pin.encode(), 3, 3, AUTH_PIN_PATTERN)},
    )

    # 券面事項確認AP: selectable; its data needs 照合番号A (the Individual Number) first.
    surface = FileApplet(
        SURFACE_AID,
        "surface",
        files={
            0x0001: BinaryFile(b"\xff\x41\x00", read_pin=0x0013),
        },
        pins={0x0013: Pin(p.my_number.encode(), 10, 10, r"[0-9]{12}")},
    )

    city_records = {int(k): v.encode() for k, v in p.city_records.items()}
    city_records.update({int(k): bytes.fromhex(str(v)) for k, v in state.get("city", {}).items()})

    def save_city(records: dict[int, bytes]) -> None:
        if persist:
            state["city"] = {str(k): v.hex() for k, v in records.items()}
            store.save(state)

    city = CityApplet(bytes.fromhex(p.city_aid), pki.city_key(), city_records, save_city)
    applets: list[Applet] = [jpki, text, surface, city]

    file_applets = [jpki, text, surface]
    for applet in file_applets:
        for fid, pin in applet.pins.items():
            saved = state.get(f"{applet.name}:{fid:04X}")
            if saved:
                pin.tries = int(str(saved["tries"]))
                pin.value = str(saved["value"]).encode()

    def save_pins() -> None:
        if not persist:
            return
        for applet in file_applets:
            for fid, pin in applet.pins.items():
                state[f"{applet.name}:{fid:04X}"] = {
                    "tries": pin.tries,
                    "value": pin.value.decode(),
                }
        store.save(state)

    for applet in file_applets:
        applet.on_change = save_pins
    card = VirtualCard(applets, atr=bytes.fromhex(p.atr))
    card.profile_dir = directory
    return card
