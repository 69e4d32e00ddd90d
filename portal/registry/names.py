"""Name normalisation for search: full-/half-width folded (NFKC), katakana read as hiragana,
spaces (full- and half-width) dropped, Latin letters lower-cased."""

from __future__ import annotations

import unicodedata

_KATAKANA_START, _KATAKANA_END = 0x30A1, 0x30F6  # ァ … ヶ
_SHIFT = 0x60  # katakana → hiragana


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)  # ｶﾀｶﾅ → カタカナ, ＡＢＣ → ABC, 　 → space
    out = []
    for ch in text:
        code = ord(ch)
        if _KATAKANA_START <= code <= _KATAKANA_END:
            ch = chr(code - _SHIFT)
        if ch.isspace():
            continue
        out.append(ch)
    return "".join(out).lower()


def search_key(family: str, given: str, family_kana: str, given_kana: str) -> str:
    """The stored search column: kanji name and kana name, normalised, separated by '|'."""
    return normalise(family + given) + "|" + normalise(family_kana + given_kana)
