"""``lampo stores`` and ``lampo partners import`` on a real SQLite file: the registry
imported whole or refused whole (every bad row named), till keys issued and revoked, and a
partner's order file checked row by row before anything is sold, then settled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lampo.bootstrap import open_storage
from lampo.domain.codec import event_to_dict
from lampo.domain.stores import parse_csv, to_csv
from tests.e2e._cli import run
from tests.e2e._http import live_event

pytestmark = pytest.mark.usefixtures("cli_sandbox")

URL = "sqlite:///retail.db"
REGISTRY = """id,name,kind,market,city,opened,closed,lat,lon
bj-001,Mi Home Beijing,own,CN,Beijing,2017-04-01,,39.9,116.4
sh-002,Mi Home Shanghai,own,CN,Shanghai,2017-05-01,2018-01-01,,
in-001,Mi Home Bengaluru,own,IN,Bengaluru,2017-05-20,,,
"""


def registry() -> tuple[int, str]:
    store = open_storage(URL, must_exist=True)
    try:
        version, stores = store.stores()
        return version, to_csv(stores)
    finally:
        store.close()


@pytest.fixture
def imported(capsys: pytest.CaptureFixture[str]) -> None:
    Path("stores.csv").write_text(REGISTRY)
    code, out, err = run(capsys, "stores", "import", "stores.csv", "--storage", URL)
    assert code == 0, err
    assert "imported 3 stores: registry version 1" in out


def test_import_then_list_show_and_export_the_registry(
    capsys: pytest.CaptureFixture[str], imported: None
) -> None:
    code, out, _ = run(
        capsys, "stores", "list", "--storage", URL, "--market", "CN", "--on", "2017-06-30"
    )
    assert code == 0
    assert "bj-001" in out
    assert "sh-002" in out
    assert "in-001" not in out
    assert "2 of 3 stores" in out
    code, out, _ = run(capsys, "stores", "show", "sh-002", "--storage", URL)
    assert code == 0
    assert "2018-01-01" in out
    code, out, _ = run(capsys, "stores", "export", "--storage", URL)
    assert code == 0
    assert parse_csv(out) == parse_csv(REGISTRY)


def test_a_file_with_bad_rows_is_refused_whole_one_line_per_problem(
    capsys: pytest.CaptureFixture[str], imported: None
) -> None:
    before = registry()
    bad = REGISTRY + "x-1,X,shop,CN,X,2017-02-30,,,\nbj-001,Again,own,CN,Beijing,2017-01-01,,100,\n"
    Path("bad.csv").write_text(bad)
    code, _, err = run(capsys, "stores", "import", "bad.csv", "--storage", URL)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[:-1] == [
        "bad.csv:5: kind: must be one of own, authorised, partner, got 'shop'",
        "bad.csv:5: opened: no such day: 2017-02-30",
        "bad.csv:6: lat: must be from -90 to 90, got 100.0",
    ]
    assert lines[-1] == "error: the store registry refused whole: 3 problems"
    assert registry() == before


def test_an_import_at_an_old_version_is_refused(
    capsys: pytest.CaptureFixture[str], imported: None
) -> None:
    before = registry()
    code, _, err = run(
        capsys, "stores", "import", "stores.csv", "--storage", URL, "--replaces", "0"
    )
    assert code == 2
    assert "the store registry is at version 1, not 0" in err
    assert registry() == before


def test_a_key_is_printed_once_listed_by_id_and_revoked(
    capsys: pytest.CaptureFixture[str], imported: None
) -> None:
    code, out, err = run(capsys, "stores", "key", "bj-001", "--storage", URL)
    assert code == 0
    key = out.strip()
    assert key.startswith("lsk_")
    key_id = key.split("_")[1]
    assert f"key id {key_id} for bj-001" in err
    code, out, _ = run(capsys, "stores", "show", "bj-001", "--storage", URL)
    assert f"key {key_id}" in out
    assert "active" in out
    assert key.split("_", 2)[2] not in out  # never the secret
    assert run(capsys, "stores", "revoke", key_id, "--storage", URL)[0] == 0
    code, out, _ = run(capsys, "stores", "show", "bj-001", "--storage", URL)
    assert "revoked" in out
    code, _, err = run(capsys, "stores", "revoke", "0123456789abcdef", "--storage", URL)
    assert code == 2
    assert "no store key" in err
    code, _, err = run(capsys, "stores", "key", "nowhere", "--storage", URL)
    assert code == 2
    assert "no store 'nowhere'" in err


# -- partners ----------------------------------------------------------------------------------
@pytest.fixture
def event(capsys: pytest.CaptureFixture[str]) -> str:
    definition = live_event("retail-cli", {"phone-red": 50, "phone-black": 500, "tv-55": 3})
    Path("event.json").write_text(json.dumps(event_to_dict(definition)))
    assert run(capsys, "event", "load", "event.json", "--storage", URL)[0] == 0
    return definition.id


def sold(event: str) -> dict[str, int]:
    store = open_storage(URL, must_exist=True)
    try:
        return {sku: level.sold for sku, level in store.stock(event).items()}
    finally:
        store.close()


ORDERS = """order_id,market,buyer,sku,quantity
jd-1,CN,u1,phone-black,2
jd-1,CN,u1,tv-55,1
jd-2,CN,,tv-55,5
jd-3,IN,u3,phone-red,1
"""


def test_a_partner_file_is_settled_and_summarised_and_a_second_run_answers_alike(
    capsys: pytest.CaptureFixture[str], event: str
) -> None:
    Path("jd.csv").write_text(ORDERS)
    code, out, err = run(
        capsys, "partners", "import", "jd", "jd.csv", "--event", event, "--storage", URL
    )
    assert code == 0, err
    assert "orders: 3" in out
    assert "lines accepted: 3" in out
    assert "lines refused: 1 (sold-out 1)" in out
    after = sold(event)
    assert after == {"phone-black": 2, "phone-red": 1, "tv-55": 1}
    code, out, _ = run(
        capsys, "partners", "import", "jd", "jd.csv", "--event", event, "--storage", URL
    )
    assert code == 0
    assert "orders: 3 (3 answered before)" in out
    assert sold(event) == after


def test_a_partner_file_with_a_bad_row_is_refused_before_anything_is_sold(
    capsys: pytest.CaptureFixture[str], event: str
) -> None:
    bad = ORDERS + "jd-4,XX,u4,phone-red,1\njd-5,CN,u5,no-such-sku,0\n"
    Path("jd.csv").write_text(bad)
    code, _, err = run(
        capsys, "partners", "import", "jd", "jd.csv", "--event", event, "--storage", URL
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0] == "jd.csv:6: market: market 'XX' takes no part in 'retail-cli'"
    assert lines[1] == "jd.csv:7: lines[1].quantity: must be 1..1000, got 0"
    assert lines[2] == "jd.csv:7: lines[1].sku: SKU 'no-such-sku' is not on sale in 'retail-cli'"
    assert lines[-1] == "error: the order file refused whole: 3 problems"
    assert sold(event) == {"phone-black": 0, "phone-red": 0, "tv-55": 0}


def test_a_jsonl_file_goes_the_same_way(capsys: pytest.CaptureFixture[str], event: str) -> None:
    orders = [
        {"order_id": "tm-1", "market": "CN", "lines": [{"sku": "phone-red", "quantity": 3}]},
        {
            "order_id": "tm-2",
            "market": "CN",
            "buyer": "b",
            "lines": [{"sku": "tv-55", "quantity": 1}],
        },
    ]
    Path("tmall.jsonl").write_text("\n".join(json.dumps(o) for o in orders) + "\n")
    code, out, err = run(
        capsys, "partners", "import", "tmall", "tmall.jsonl", "--event", event, "--storage", URL
    )
    assert code == 0, err
    assert "lines accepted: 2" in out
    assert sold(event) == {"phone-black": 0, "phone-red": 3, "tv-55": 1}
    Path("bad.jsonl").write_text('{"order_id": "x"\n')
    code, _, err = run(
        capsys, "partners", "import", "tmall", "bad.jsonl", "--event", event, "--storage", URL
    )
    assert code == 2
    assert err.startswith("bad.jsonl:1: row: not JSON")
