from datetime import date

from portal.registry import service
from portal.registry.names import normalise
from tests.factories import make_resident


def test_normalise_folds_width_and_kana():
    assert normalise("ﾔﾏﾀﾞ ﾊﾅｺ") == normalise("やまだ　はなこ") == normalise("ヤマダハナコ")
    assert normalise("ＹＡＭＡＤＡ") == "yamada"


def test_search_treats_width_and_kana_alike(app, db):
    hanako = make_resident()
    make_resident(family="鈴木", given="一郎", family_kana="スズキ", given_kana="イチロウ")
    db.session.commit()
    for query in ("山田", "やまだ", "ﾔﾏﾀﾞ", "ヤマダ　ハナコ", "はなこ"):
        assert [r.id for r in service.search_residents(query)] == [hanako.id], query
    # one or two characters match the start of the kanji or kana name; three or more, anywhere
    assert [r.id for r in service.search_residents("やま")] == [hanako.id]
    assert service.search_residents("花子") == []
    assert service.search_residents("   ") == []
    assert service.search_residents("%") == []  # LIKE wildcards are literal


def test_household_and_ages(app, db):
    head = make_resident(family="佐藤", given="健", family_kana="サトウ", given_kana="ケン", sex=1)
    child = make_resident(
        family="佐藤",
        given="蓮",
        family_kana="サトウ",
        given_kana="レン",
        sex=1,
        birth=date(2026, 3, 15),
        household=head.household,
        relation="child",
        ward=head.ward,
    )
    db.session.commit()
    assert {m.id for m in service.household_members(child)} == {head.id, child.id}
    assert head.household.head_id == head.id
    assert child.age_in_months_on(date(2026, 11, 14)) == 7
    assert child.age_in_months_on(date(2026, 11, 15)) == 8
    assert head.age_on(date(2026, 3, 31)) == 40 and head.age_on(date(2026, 4, 1)) == 41
