"""Bulk-load a synthetic city of N residents into a PostgreSQL database built by the migrations.

    python bench/load_residents.py [--residents 1000000] [--url URL] [--database portal_bench] [--verify]

The database is dropped and created again, migrated with Alembic (``flask db upgrade``, never
``create_all``), then filled with psycopg 3 COPY: wards, addresses, households (with head_id),
residents (``name_search`` from ``portal.registry.names.search_key``), individual_numbers (valid
check digits; keyed hash from ``portal.vault.service.lookup_hash``; AES-256-GCM under the vault's own
keys and associated data), a few resident accounts, two staff users, and access records for some
residents whose hash chain is built with ``portal.access.service.compute_hash``.

It prints the load time and rate, and as the limit measured in the same run, the rate of a plain
COPY of the same number of trivial rows into a one-column-plus-key table. Individual Numbers are
never printed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from array import array
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import _common
import psycopg
from _common import figure, num

# --- the synthetic city ---------------------------------------------------------------------------

WARDS = (
    ("01", "中央区", "Chuo Ward", "260", ("本町", "港町", "栄町", "新宿", "市場町", "千葉寺町")),
    ("02", "北区", "Kita Ward", "263", ("緑町", "桜台", "若葉", "松ケ丘", "柏台")),
    ("03", "南区", "Minami Ward", "266", ("浜野町", "海岸通", "花園", "朝日ケ丘", "大森町")),
    ("04", "東区", "Higashi Ward", "264", ("東町", "旭町", "高根", "小倉台", "千城台")),
    ("05", "西区", "Nishi Ward", "261", ("西町", "幸町", "高洲", "真砂", "稲毛")),
    ("06", "緑区", "Midori Ward", "267", ("おゆみ野", "誉田町", "土気町", "鎌取町")),
    ("07", "美浜区", "Mihama Ward", "262", ("磯辺", "打瀬", "中瀬", "若葉台", "幕張西")),
)
FAMILY = (
    ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"), ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"), ("小林", "コバヤシ"),
    ("加藤", "カトウ"), ("吉田", "ヨシダ"), ("山田", "ヤマダ"), ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"), ("松本", "マツモト"), ("井上", "イノウエ"), ("木村", "キムラ"), ("林", "ハヤシ"),
    ("斎藤", "サイトウ"), ("清水", "シミズ"), ("山崎", "ヤマザキ"), ("森", "モリ"), ("池田", "イケダ"),
    ("橋本", "ハシモト"), ("阿部", "アベ"), ("石川", "イシカワ"), ("山下", "ヤマシタ"), ("中島", "ナカジマ"),
    ("石井", "イシイ"), ("小川", "オガワ"), ("前田", "マエダ"), ("岡田", "オカダ"), ("長谷川", "ハセガワ"),
    ("藤田", "フジタ"), ("後藤", "ゴトウ"), ("近藤", "コンドウ"), ("村上", "ムラカミ"), ("遠藤", "エンドウ"),
    ("青木", "アオキ"), ("坂本", "サカモト"), ("斉藤", "サイトウ"), ("福田", "フクダ"), ("太田", "オオタ"),
    ("西村", "ニシムラ"), ("藤井", "フジイ"), ("金子", "カネコ"), ("岡本", "オカモト"), ("藤原", "フジワラ"),
    ("中野", "ナカノ"), ("三浦", "ミウラ"), ("原田", "ハラダ"), ("中川", "ナカガワ"), ("松田", "マツダ"),
    ("竹内", "タケウチ"), ("小野", "オノ"), ("田村", "タムラ"), ("中山", "ナカヤマ"), ("和田", "ワダ"),
    ("石田", "イシダ"), ("森田", "モリタ"),
)  # fmt: skip
MALE = (
    ("太郎", "タロウ"), ("健", "ケン"), ("翔", "ショウ"), ("大輔", "ダイスケ"), ("蓮", "レン"),
    ("悠真", "ユウマ"), ("誠", "マコト"), ("浩", "ヒロシ"), ("湊", "ミナト"), ("陽翔", "ハルト"),
    ("大翔", "ヒロト"), ("樹", "イツキ"), ("拓也", "タクヤ"), ("直樹", "ナオキ"), ("隆", "タカシ"),
    ("茂", "シゲル"), ("勇", "イサム"), ("清", "キヨシ"), ("博", "ヒロシ"), ("修", "オサム"),
    ("一郎", "イチロウ"), ("健太", "ケンタ"), ("翔太", "ショウタ"), ("大和", "ヤマト"), ("颯", "ハヤテ"),
    ("悠人", "ユウト"), ("陸", "リク"), ("蒼", "アオイ"), ("朝陽", "アサヒ"), ("律", "リツ"),
)  # fmt: skip
FEMALE = (
    ("花子", "ハナコ"), ("陽菜", "ヒナ"), ("結衣", "ユイ"), ("美咲", "ミサキ"), ("さくら", "サクラ"),
    ("葵", "アオイ"), ("由美", "ユミ"), ("恵子", "ケイコ"), ("凛", "リン"), ("芽依", "メイ"),
    ("陽葵", "ヒマリ"), ("紬", "ツムギ"), ("結菜", "ユイナ"), ("美羽", "ミウ"), ("明美", "アケミ"),
    ("和子", "カズコ"), ("幸子", "サチコ"), ("洋子", "ヨウコ"), ("京子", "キョウコ"), ("久美子", "クミコ"),
    ("真由美", "マユミ"), ("智子", "トモコ"), ("直美", "ナオミ"), ("愛", "アイ"), ("彩", "アヤ"),
    ("優花", "ユウカ"), ("莉子", "リコ"), ("杏", "アン"), ("澪", "ミオ"), ("千尋", "チヒロ"),
)  # fmt: skip
CARE_LEVELS = ("support1", "support2", "care1", "care2", "care3", "care4", "care5")
DISABILITY = ("physical", "intellectual", "mental")

# Household kinds: (weight, name). Average size ≈ 2.4, near a Japanese city's.
KINDS = (
    (0.14, "single_young"),
    (0.14, "single_elderly"),
    (0.08, "single_middle"),
    (0.20, "couple"),
    (0.28, "couple_children"),
    (0.08, "single_parent"),
    (0.08, "three_generations"),
)

# Who reads a resident's data, and why: (weight, kind, actor id, role, organisation, terminal, items,
# purpose). "{w}" is the resident's ward code, "{ward}" its Japanese name.
ACCESS_SCENARIOS = (
    (30, "staff", "counter{w}-{k}", "counter", "{ward}役所 市民課", None, "basic4", "identity_check"),
    (12, "staff", "counter{w}-{k}", "counter", "{ward}役所 市民課", None, "basic4", "identity_check: search"),
    (15, "staff", "counter{w}-{k}", "counter", "{ward}役所 市民課", None, "basic4,household,certificate",
     "certificate"),
    (6, "staff", "counter{w}-{k}", "counter", "{ward}役所 市民課", None,
     "basic4,household,register_status,individual_number", "moving"),
    (8, "staff", "proc-{k}", "processing", "事務センター", None, "basic4,household,individual_number",
     "child_allowance"),
    (14, "terminal", "kiosk-{w}-{k}", "kiosk", "{ward}役所", "KIOSK-{w}-{k}",
     "basic4,certificate,card_credential", "certificate: kiosk"),
    (8, "job", "eligibility-batch", "job", "こども家庭課", None, "household,attributes",
     "child_allowance: eligibility check"),
    (4, "staff", "counter{w}-{k}", "counter", "{ward}役所 市民課", None, "basic4",
     "portal_support: registration code"),
    (3, "staff", "audit-{k}", "auditor", "監査委員事務局", None, "basic4", "audit"),
)  # fmt: skip

LOADER_VERSION = 1  # bump when the loaded data changes shape, so portal_pages loads again
ACCOUNTS = 10
BENCH_PASSWORD = "bench-password-2026"  # noqa: S105 - a benchmark login, printed nowhere
ACCOUNT_EMAIL = "bench{}@bench.city.example.jp"
STAFF = (("bench-counter", "窓口 一郎", "中央区役所 市民課", "counter"),
         ("bench-auditor", "監査 六郎", "監査委員事務局", "auditor"))  # fmt: skip
ACCESS_SHARE = 0.06  # residents with any access record
ACCOUNT_RECORDS = 24  # records of each account's resident (the page the benchmark opens)
BATCH = 20_000
TABLES = (
    "wards", "addresses", "households", "residents", "individual_numbers",
    "staff_users", "resident_accounts", "access_records",
)  # fmt: skip


@dataclass
class Plan:
    """The city's shape, decided before any row is written (households in id order)."""

    ward: array = field(default_factory=lambda: array("b"))  # per household
    kind: array = field(default_factory=lambda: array("b"))
    size: array = field(default_factory=lambda: array("b"))
    moved_out: array = field(default_factory=lambda: array("b"))
    residents: int = 0


@dataclass
class LoadReport:
    residents: int
    rows: dict[str, int]
    seconds: dict[str, float]
    total_seconds: float
    baseline_rows: int = 0
    baseline_seconds: float = 0.0
    account_emails: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def rate(self) -> float:
        return self.total_rows / self.total_seconds

    @property
    def baseline_rate(self) -> float:
        return self.baseline_rows / self.baseline_seconds if self.baseline_seconds else 0.0

    def as_marker(self) -> dict:
        return {
            "residents": self.residents,
            "rows": self.rows,
            "seconds": self.seconds,
            "total_seconds": self.total_seconds,
            "baseline_rows": self.baseline_rows,
            "baseline_seconds": self.baseline_seconds,
            "account_emails": self.account_emails,
        }

    @classmethod
    def from_marker(cls, m: dict) -> LoadReport:
        return cls(
            m["residents"], m["rows"], m["seconds"], m["total_seconds"], m["baseline_rows"],
            m["baseline_seconds"], m["account_emails"],
        )  # fmt: skip


def plan_city(n: int, rng: random.Random) -> Plan:
    plan = Plan()
    weights = [w for w, _ in KINDS]
    kinds = list(range(len(KINDS)))
    total = 0
    while total < n:
        k = rng.choices(kinds, weights)[0]
        name = KINDS[k][1]
        if name.startswith("single_") and name != "single_parent":
            size = 1
        elif name == "couple":
            size = 2
        elif name == "couple_children":
            size = 2 + rng.choice((1, 1, 2, 2, 2, 3))
        elif name == "single_parent":
            size = 1 + rng.choice((1, 1, 2))
        else:
            size = 2 + rng.choice((1, 2)) + rng.choice((1, 1, 2))
        size = min(size, n - total)
        plan.ward.append(rng.randrange(len(WARDS)))
        plan.kind.append(k)
        plan.size.append(size)
        plan.moved_out.append(1 if rng.random() < 0.02 else 0)
        total += size
    plan.residents = total
    return plan


# --- writing -------------------------------------------------------------------------------------


def _copy(conn: psycopg.Connection, table: str, columns: tuple[str, ...], rows) -> int:
    """COPY rows in PostgreSQL's binary format (values dumped by psycopg's C dumpers, typed by the
    table's own column types)."""
    types = dict(
        conn.execute(
            "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
            (table,),
        ).fetchall()
    )
    count = 0
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types([types[c] for c in columns])
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _wards():
    for i, (code, ja, en, _, _) in enumerate(WARDS, start=1):
        yield (i, code, ja, en)


def _addresses(plan: Plan, rng: random.Random):
    for h, w in enumerate(plan.ward, start=1):
        _, _, _, postal, towns = WARDS[w]
        yield (
            h,
            w + 1,
            f"{postal}{rng.randrange(10000):04d}",
            f"{towns[rng.randrange(len(towns))]}{rng.randint(1, 6)}丁目",
            f"{rng.randint(1, 40)}番{rng.randint(1, 25)}号",
            f"ハイツみなと{rng.randint(1, 12)}0{rng.randint(1, 9)}号室" if rng.random() < 0.35 else None,
        )


def _households(plan: Plan):
    head = 1  # residents are numbered household by household, the head first
    for h, size in enumerate(plan.size, start=1):
        yield (h, f"{h:010d}", h, head)
        head += size


RESIDENT_COLUMNS = (
    "id", "atena_no", "family_name", "given_name", "family_name_kana", "given_name_kana", "name_search",
    "birth_date", "sex", "ward_id", "address_id", "household_id", "relationship_to_head", "status",
    "moved_in_on", "moved_out_on", "deceased_on", "pregnancy_due_on", "care_level",
    "disability_certificate", "disability_grade",
)  # fmt: skip


def _residents(plan: Plan, rng: random.Random, today: date, ward_of: array):
    from portal.registry.names import search_key

    keys: dict[tuple[int, int, int], str] = {}
    t = today.toordinal()
    year = 365.25
    rid = 0
    nf, nm, nw = len(FAMILY), len(MALE), len(FEMALE)

    def birth(lo: float, hi: float) -> int:
        return t - rng.randrange(int(lo * year), int(hi * year))

    for h in range(len(plan.size)):
        w = plan.ward[h]
        kind = KINDS[plan.kind[h]][1]
        size = plan.size[h]
        fam = rng.randrange(nf)
        # (sex, birth ordinal, relationship)
        people: list[tuple[int, int, str]] = []
        if kind == "single_young":
            people.append((rng.choice((1, 2)), birth(19, 40), "head"))
        elif kind == "single_elderly":
            people.append((rng.choice((1, 2, 2)), birth(65, 98), "head"))
        elif kind == "single_middle":
            people.append((rng.choice((1, 2)), birth(40, 65), "head"))
        else:
            if kind == "single_parent":
                head_b = birth(25, 50)
                mother_b = head_b
                people.append((rng.choice((2, 2, 2, 1)), head_b, "head"))
            else:
                head_b = birth(26, 80 if kind == "couple" else 55)
                mother_b = min(t - int(22 * year), head_b + rng.randint(-1500, 2500))
                people.append((1, head_b, "head"))
                people.append((2, mother_b, "spouse"))
            rest = size - len(people)
            n_children = rest - rest // 2 if kind == "three_generations" else rest
            hi = min(mother_b + int(42 * year), t - 30)
            lo = min(mother_b + int(20 * year), hi)
            for _ in range(n_children):
                people.append((rng.choice((1, 2)), rng.randint(lo, hi), "child"))
            while len(people) < size:  # the head's parents
                people.append(
                    (rng.choice((1, 2)), head_b - rng.randint(int(22 * year), int(36 * year)), "parent")
                )
        people = people[:size]
        moved_out = plan.moved_out[h]
        gone_on = (today - timedelta(days=rng.randint(10, 900))) if moved_out else None
        hid = h + 1
        for sex, b, relation in people:
            rid += 1
            ward_of.append(w)
            names = MALE if sex == 1 else FEMALE
            g = rng.randrange(nm if sex == 1 else nw)
            key = (fam, g, sex)
            ns = keys.get(key)
            if ns is None:
                ns = keys[key] = search_key(FAMILY[fam][0], names[g][0], FAMILY[fam][1], names[g][1])
            age = (t - b) / year
            status, moved_out_on, deceased_on = "active", None, None
            if moved_out:
                status, moved_out_on = "moved_out", gone_on
            elif age > 80 and rng.random() < 0.03:
                status, deceased_on = "deceased", today - timedelta(days=rng.randint(5, 700))
            born = date.fromordinal(b)
            moved_in = born if rng.random() < 0.45 else date.fromordinal(rng.randint(b, t - 1))
            due = None
            if sex == 2 and relation in ("head", "spouse") and 20 <= age <= 42 and rng.random() < 0.04:
                due = today + timedelta(days=rng.randint(20, 250))
            care = CARE_LEVELS[rng.randrange(7)] if age >= 65 and rng.random() < 0.18 else None
            cert, grade = None, None
            if age >= 18 and rng.random() < 0.05:
                cert, grade = DISABILITY[rng.randrange(3)], rng.randint(1, 6)
            yield (
                rid, f"{WARDS[w][0]}{rid:010d}", FAMILY[fam][0], names[g][0], FAMILY[fam][1], names[g][1],
                ns, born, sex, w + 1, hid, hid, relation, status, moved_in, moved_out_on, deceased_on,
                due, care, cert, grade,
            )  # fmt: skip


# Individual Numbers: a bijection of the resident id onto 11 digits (so every number is distinct),
# then the check digit. Multiplier and offset are coprime with 10**11.
_MUL, _ADD, _MOD = 7_919_000_003, 12_345_678_901, 10**11


def _check_digit_function():
    """The project's check-digit function (moving from portal.vault.checkdigits to card.ids)."""
    try:
        from card.ids import my_number_check_digit
    except ImportError:
        from portal.vault.checkdigits import individual_number_check_digit as my_number_check_digit
    return my_number_check_digit


def synthetic_number(resident_id: int, _digit=[]) -> str:  # noqa: B006 - a cache
    if not _digit:
        _digit.append(_check_digit_function())
    first = f"{(resident_id * _MUL + _ADD) % _MOD:011d}"
    return first + str(_digit[0](first))


def _numbers(n: int, stored_at: datetime):
    """Rows of individual_numbers, made with the vault's own keys, associated data and keyed hash."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from portal.vault import service as vault

    keys = vault._keys()  # the vault's key material, derived exactly as store() does
    aes = AESGCM(keys.encryption)
    urandom = os.urandom
    for rid in range(1, n + 1):
        number = synthetic_number(rid)
        nonce = urandom(12)
        yield (
            rid,
            rid,
            vault.lookup_hash(number),  # validates the check digit (clean) on the way in
            nonce + aes.encrypt(nonce, number.encode(), vault._aad(rid)),
            keys.key_id,
            stored_at,
        )


def _access_plan(n: int, rng: random.Random, account_ids: list[int], now: datetime):
    """(at in µs, resident id, scenario index, actor number), sorted by time: the chain's order."""
    weights = [s[0] for s in ACCESS_SCENARIOS]
    scen = list(range(len(ACCESS_SCENARIOS)))
    end = int(now.timestamp() * 1_000_000) - 3_600_000_000
    start = end - 3 * 365 * 86_400_000_000
    out = []
    special = set(account_ids)
    for rid in range(1, n + 1):
        if rid in special:
            k = ACCOUNT_RECORDS
        elif rng.random() < ACCESS_SHARE:
            k = 1 + min(29, int(rng.expovariate(1 / 2.5)))
        else:
            continue
        for s in rng.choices(scen, weights, k=k):
            out.append((rng.randrange(start, end), rid, s, rng.randint(1, 8)))
    out.sort()
    return out


ACCESS_COLUMNS = (
    "id", "at", "resident_id", "actor_kind", "actor_id", "actor_role", "organisation", "terminal_id",
    "data_items", "purpose", "prev_hash", "row_hash",
)  # fmt: skip


def _access_rows(records, ward_of: array):
    from portal.access.service import GENESIS, compute_hash

    prev = GENESIS
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for i, (at_us, rid, s, k) in enumerate(records, start=1):
        _, kind, actor, role, org, terminal, items, purpose = ACCESS_SCENARIOS[s]
        code, ward = WARDS[ward_of[rid - 1]][0], WARDS[ward_of[rid - 1]][1]
        rec = SimpleNamespace(
            at=epoch + timedelta(microseconds=at_us),
            resident_id=rid,
            actor_kind=kind,
            actor_id=actor.format(w=code, k=k),
            actor_role=role,
            organisation=org.format(ward=ward),
            terminal_id=terminal.format(w=code, k=k) if terminal else None,
            data_items=items,
            purpose=purpose,
        )
        row_hash = compute_hash(prev, rec)  # the access service's own canonical form and hash
        yield (
            i, rec.at, rid, rec.actor_kind, rec.actor_id, rec.actor_role, rec.organisation,
            rec.terminal_id, rec.data_items, rec.purpose, prev, row_hash,
        )  # fmt: skip
        prev = row_hash


def _account_residents(plan: Plan) -> list[int]:
    """Heads of the first households with children that still live in the city."""
    out, first = [], 1
    for h in range(len(plan.size)):
        if KINDS[plan.kind[h]][1] == "couple_children" and not plan.moved_out[h] and plan.size[h] >= 3:
            out.append(first)
            if len(out) == ACCOUNTS:
                break
        first += plan.size[h]
    return out


def migrate(url: str) -> None:
    """Build the schema with the project's Alembic migrations (never create_all)."""
    from flask_migrate import upgrade

    from wsgi import create_app

    app = create_app({"NAME": "test", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(directory=str(_common.ROOT / "migrations"))
        from portal.extensions import db

        db.engine.dispose()


def baseline(conninfo: str, rows: int) -> float:
    """The in-run limit: seconds for a plain COPY of ``rows`` trivial rows (integer key + short
    text) into a fresh ordinary table on the same server, in one transaction, through the same
    write_row path; the table is dropped afterwards."""
    with psycopg.connect(conninfo) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_baseline")
        conn.execute("CREATE TABLE bench_copy_baseline (id integer PRIMARY KEY, v text NOT NULL)")
        conn.commit()
        t0 = time.perf_counter()
        _copy(conn, "bench_copy_baseline", ("id", "v"), ((i, "x") for i in range(1, rows + 1)))
        conn.commit()
        seconds = time.perf_counter() - t0
        conn.execute("DROP TABLE bench_copy_baseline")
        conn.commit()
    return seconds


def _schema(conn: psycopg.Connection) -> list[tuple]:
    """Every index and constraint of the loaded tables, as PostgreSQL prints their definitions."""
    indexes = conn.execute(
        "SELECT tablename, indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = 'public' AND tablename = ANY(%s) ORDER BY 1, 2",
        (list(TABLES),),
    ).fetchall()
    constraints = conn.execute(
        "SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid), k.convalidated "
        "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
        "WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%s) ORDER BY 1, 2",
        (list(TABLES),),
    ).fetchall()
    return indexes + constraints


def _detach(conn: psycopg.Connection) -> list[str]:
    """What pg_restore does for speed: drop the foreign keys, unique constraints and secondary
    indexes of the tables about to be filled (primary keys stay), and return the statements
    that put them back exactly as the migrations made them. Rows then go in with no per-row
    trigger or index work; indexes are built once, sorted, and each foreign key is checked by one
    query over the whole table when it is added back."""
    tables = list(TABLES)
    fks = conn.execute(
        "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid WHERE k.contype = 'f' "
        "AND c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%s) ORDER BY 1, 2",
        (tables,),
    ).fetchall()
    uniques = conn.execute(
        "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid WHERE k.contype = 'u' "
        "AND c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%s) ORDER BY 1, 2",
        (tables,),
    ).fetchall()
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s) "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY 1",
        (tables,),
    ).fetchall()
    for table, name, _ in fks + uniques:
        conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    conn.commit()
    return (
        [definition for _, definition in indexes]
        + [f'ALTER TABLE "{t}" ADD CONSTRAINT "{n}" {d}' for t, n, d in uniques]
        + [f'ALTER TABLE "{t}" ADD CONSTRAINT "{n}" {d}' for t, n, d in fks]
    )


def _attach(conn: psycopg.Connection, statements: list[str]) -> int:
    conn.execute("SET maintenance_work_mem = '256MB'")
    for sql in statements:
        conn.execute(sql)  # a broken foreign key or a duplicate fails here, loudly
    conn.commit()
    return 0


def load(url: str, n: int, *, seed: int = 2026, with_baseline: bool = True) -> LoadReport:
    """Fill the (freshly migrated) database at ``url`` with a city of ``n`` residents."""
    from portal.accounts.service import hash_password
    from wsgi import create_app

    app = create_app({"NAME": "test", "SQLALCHEMY_DATABASE_URI": url})
    conninfo = _common.libpq_url(url)
    rows: dict[str, int] = {}
    seconds: dict[str, float] = {}
    today = date.today()
    now = datetime.now(UTC)
    t_start = time.perf_counter()

    def step(name: str, fn) -> None:
        t0 = time.perf_counter()
        rows[name] = rows.get(name, 0) + (fn() or 0)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0

    plan = plan_city(n, random.Random(f"{seed}:plan"))
    account_ids = _account_residents(plan)
    ward_of = array("b")
    emails = [ACCOUNT_EMAIL.format(i) for i in range(1, len(account_ids) + 1)]

    with app.app_context(), psycopg.connect(conninfo) as conn:
        password_hash = hash_password(BENCH_PASSWORD)  # argon2 as configured; one hash for all
        before = _schema(conn)
        attach: list[str] = []
        step("detach_constraints", lambda: attach.extend(_detach(conn)))
        step("wards", lambda: _copy(conn, "wards", ("id", "code", "name_ja", "name_en"), _wards()))
        step("addresses", lambda: _copy(
            conn, "addresses", ("id", "ward_id", "postal_code", "town", "block", "building"),
            _addresses(plan, random.Random(f"{seed}:addresses"))))  # fmt: skip
        step("households", lambda: _copy(
            conn, "households", ("id", "number", "address_id", "head_id"), _households(plan)))  # fmt: skip
        step("residents", lambda: _copy(
            conn, "residents", RESIDENT_COLUMNS,
            _residents(plan, random.Random(f"{seed}:residents"), today, ward_of)))  # fmt: skip
        step("individual_numbers", lambda: _copy(
            conn, "individual_numbers",
            ("id", "resident_id", "lookup_hash", "ciphertext", "key_id", "stored_at"),
            _numbers(n, now)))  # fmt: skip
        step("staff_users", lambda: _copy(
            conn, "staff_users",
            ("id", "login_id", "display_name", "organisation", "password_hash", "roles", "active",
             "session_version", "created_at"),
            ((i, login, name, org, password_hash, roles, True, 1, now)
             for i, (login, name, org, roles) in enumerate(STAFF, start=1))))  # fmt: skip
        step("resident_accounts", lambda: _copy(
            conn, "resident_accounts",
            ("id", "email", "password_hash", "email_verified_at", "resident_id", "locale", "created_at",
             "session_version", "active"),
            ((i, email, password_hash, now, rid, "ja", now, 1, True)
             for i, (email, rid) in enumerate(zip(emails, account_ids, strict=True), start=1))))  # fmt: skip

        def access() -> int:
            records = _access_plan(n, random.Random(f"{seed}:access"), account_ids, now)
            return _copy(conn, "access_records", ACCESS_COLUMNS, _access_rows(records, ward_of))

        step("access_records", access)
        conn.commit()
        step("attach_constraints", lambda: _attach(conn, attach))
        if _schema(conn) != before:
            raise RuntimeError("the schema after loading differs from the migrated one")

        def finish() -> int:
            for table in TABLES:  # the app inserts after us: move each id sequence past our ids
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - our names
                    f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
                )
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM (ANALYZE) " + ", ".join(TABLES))
            conn.autocommit = False
            return 0

        step("vacuum_analyze", finish)
    total = time.perf_counter() - t_start
    rows = {k: v for k, v in rows.items() if v}
    report = LoadReport(n, rows, seconds, total, account_emails=emails)
    if with_baseline:
        report.baseline_rows = report.total_rows
        report.baseline_seconds = baseline(conninfo, report.total_rows)
    return report


def verify(url: str, n: int) -> list[str]:
    """Check what was loaded through the app's own code; return problems (empty when all is well).

    The hash chain with ``verify_chain()`` (what ``flask audit verify`` runs), a sample of
    Individual Numbers through ``find_resident_id`` (keyed hash) and ``reveal`` (decryption, its
    access record rolled back), household heads, and every foreign key."""
    from sqlalchemy import text

    from portal.access.service import Actor, verify_chain
    from portal.extensions import db
    from portal.vault import service as vault
    from wsgi import create_app

    problems = []
    app = create_app({"NAME": "test", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        report = verify_chain()
        if not report.ok:
            problems.append(f"access chain broken at row {report.first_broken_id}: {report.reason}")
        actor = Actor("job", "bench-verify", "job", "bench")
        for rid in sorted({1, n, *random.Random(7).sample(range(1, n + 1), min(n, 50))}):
            number = synthetic_number(rid)
            if vault.find_resident_id(number) != rid:
                problems.append(f"keyed hash of resident {rid}'s number does not find them")
            if vault.reveal(rid, purpose="bench verification", actor=actor) != number:
                problems.append(f"resident {rid}'s number does not decrypt to what was stored")
        db.session.rollback()  # the reveal records above are not kept
        heads = db.session.execute(
            text(
                "SELECT count(*) FROM households h LEFT JOIN residents r ON r.id = h.head_id "
                "WHERE r.household_id IS DISTINCT FROM h.id"
            )
        ).scalar()
        if heads:
            problems.append(f"{heads} households whose head is not a member")
        db.session.remove()
        db.engine.dispose()
    return problems


def print_report(
    report: LoadReport, *, settings: dict[str, str] | None = None, recorded: bool = False
) -> None:
    if settings:
        print(_common.durability_note(settings))
    suffix = " (recorded when the database was loaded)" if recorded else ""
    figure("load: residents", num(report.residents))
    for table in ("addresses", "households", "residents", "individual_numbers", "access_records"):
        if table in report.rows:
            figure(f"load: {table}", f"{num(report.rows[table])} rows in {report.seconds[table]:.1f} s")
    figure(
        "load: build indexes, check foreign keys",
        f"{report.seconds.get('attach_constraints', 0) + report.seconds.get('detach_constraints', 0):.1f} s",
    )
    figure("load: vacuum + analyze", f"{report.seconds.get('vacuum_analyze', 0):.1f} s")
    figure("load: rows written (all tables)", num(report.total_rows))
    figure("load: time", f"{report.total_seconds:.1f} s{suffix}")
    figure("load: rate", f"{num(report.rate)} rows/s")
    if report.baseline_seconds:
        figure(
            "limit: plain COPY of trivial rows",
            f"{num(report.baseline_rate)} rows/s ({num(report.baseline_rows)} rows in "
            f"{report.baseline_seconds:.1f} s)",
        )
        figure("ratio: load rate / plain COPY rate", f"{report.rate / report.baseline_rate:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=1_000_000, help="how many residents (1,000,000)")
    parser.add_argument("--url", default=_common.default_server_url(),
                        help="PostgreSQL server URL (default: $TEST_POSTGRES_URL)")  # fmt: skip
    parser.add_argument("--database", default=_common.BENCH_DB, help="database to (re)create")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--verify", action="store_true",
                        help="check the chain, the vault and the FKs afterwards "
                             "(always on up to 100,000 residents)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.url:
        parser.error('no --url and no TEST_POSTGRES_URL: run eval "$(bash scripts/services.sh)" first')
    if args.residents < 100:
        parser.error("--residents must be at least 100")
    url = build(args.url, args.database, args.residents, seed=args.seed)
    if args.verify or args.residents <= 100_000:
        t0 = time.perf_counter()
        problems = verify(url, args.residents)
        figure("verify: chain, vault sample, household heads", "ok" if not problems else "FAILED")
        figure("verify: time", f"{time.perf_counter() - t0:.1f} s")
        for p in problems:
            print("  " + p)
        if problems:
            return 1
    return 0


def build(server_url: str, database: str, n: int, *, seed: int = 2026) -> str:
    """Recreate ``database``, migrate it, load it, print the figures and record them on it."""
    url = _common.recreate_database(server_url, database)
    t0 = time.perf_counter()
    migrate(url)
    migrate_seconds = time.perf_counter() - t0
    report = load(url, n, seed=seed)
    print_report(report, settings=_common.server_settings(url))
    figure("migrate: alembic upgrade (not in load time)", f"{migrate_seconds:.1f} s")
    marker = {"loader": LOADER_VERSION, "seed": seed, "revision": _common.alembic_head()}
    marker.update(report.as_marker())
    _common.write_marker(url, database, marker)
    return url


if __name__ == "__main__":
    sys.exit(main())
