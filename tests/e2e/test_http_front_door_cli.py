"""``lampo queue show|rate|draw|registrations`` and the battle report's front-door section,
on a SQLite file a front door was used on (registrations and a pre-queue, made through
the service as a server would make them)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lampo.domain.event import Window
from lampo.domain.frontdoor import FrontDoor
from lampo.services.clock import ManualClock
from lampo.services.frontdoor import FrontDoorService
from lampo.services.sales import Sales
from lampo.storage import from_url
from lampo.storage.door import door_store
from tests.e2e._cli import run
from tests.factories import sale_event

pytestmark = pytest.mark.sqlite

EVENT = "door-cli"
PLAIN = "plain-cli"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file with ``EVENT``: registration two to three hours ago (closed), a
    lottery of one winner per unit (2 units), the sale open since two hours ago, three
    registrations and two visitors in the pre-queue; and ``PLAIN``, without a front door."""
    path: Path = tmp_path_factory.mktemp("door-cli") / "door.db"
    url = f"sqlite:///{path.resolve().as_posix()}"
    now = datetime.now(UTC).replace(microsecond=0)
    opens = now - timedelta(hours=2)
    door = FrontDoor(
        registration_opens=opens - timedelta(hours=1),
        registration_closes=opens,
        lottery_factor=1,
        admit_per_second=5,
    )
    window = Window(opens, opens + timedelta(hours=12))
    event = replace(
        sale_event(EVENT, {"phone-red": 2}), windows={"CN": window, "IN": window}, front_door=door
    )
    plain = replace(sale_event(PLAIN, {"phone-red": 2}), windows={"CN": window, "IN": window})
    store = from_url(url)
    try:
        clock = ManualClock(opens - timedelta(minutes=30))
        sales = Sales(store, clock)
        sales.open(event)
        sales.open(plain)
        service = FrontDoorService(sales, door_store(store), b"k" * 32)
        for account in ("ada", "bo", "cy"):
            service.register(EVENT, account)
        service.join(EVENT, "CN", "ada")
        service.join(EVENT, "CN", "bo")
    finally:
        store.close()
    return url


def test_show_tells_the_queues_and_the_registrations(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "queue", "show", EVENT, "--storage", url)
    assert code == 0, err
    assert "Front door of door-cli" in out
    cn = next(line for line in out.splitlines() if "│ CN" in line)
    assert cn.split("│")[2].strip() == "2"  # joined
    assert "registrations: 3" in out
    code, out, _ = run(capsys, "queue", "show", EVENT, "--market", "IN", "--storage", url)
    assert code == 0
    assert "│ CN" not in out
    assert "│ IN" in out


def test_rate_changes_a_markets_admission_rate(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "queue", "rate", EVENT, "IN", "50", "--storage", url)
    assert code == 0, err
    assert "50 per second" in out
    code, out, _ = run(capsys, "queue", "show", EVENT, "--market", "IN", "--storage", url)
    assert "50" in next(line for line in out.splitlines() if "│ IN" in line)


def test_the_draw_is_made_once_and_the_first_stands(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, first, err = run(capsys, "queue", "draw", EVENT, "--storage", url)
    assert code == 0, err
    assert "2 drawn of 3 registrations" in first
    code, again, _ = run(capsys, "queue", "draw", EVENT, "--storage", url)
    assert code == 0
    assert again == first  # the same seed, the same time: the first draw stands
    code, out, err = run(capsys, "report", "event", EVENT, "--storage", url)
    assert code == 0, err
    assert "Front door: 3 registered, 2 drawn" in out
    assert "Waiting room" in out
    code, out, err = run(capsys, "report", "event", EVENT, "--format", "json", "--storage", url)
    assert code == 0, err
    door = json.loads(out)["front_door"]
    assert (door["registrations"], door["drawn"]) == (3, 2)
    assert [(q["market"], q["joined"]) for q in door["queues"]] == [("CN", 2), ("IN", 0)]
    code, out, _ = run(capsys, "report", "event", PLAIN, "--format", "json", "--storage", url)
    assert json.loads(out)["front_door"] is None


def test_registrations_are_counted_and_exported_as_csv(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "queue", "registrations", EVENT, "--storage", url)
    assert code == 0
    assert "3 registrations" in out
    code, out, err = run(capsys, "queue", "registrations", EVENT, "--csv", "--storage", url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "account,registered_at,phone_hash,device_hash"
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["ada", "bo", "cy"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("queue", "show", "no-such-event"), "no sale event"),
        (("queue", "show", PLAIN), "has no front door"),
        (("queue", "rate", EVENT, "XX", "5"), "market 'XX'"),
        (("queue", "rate", EVENT, "CN", "0"), "see lampo --help"),
        (("queue", "rate", EVENT, "CN", "1000001"), "see lampo --help"),
        (("queue", "draw", PLAIN), "has no front door"),
    ],
)
def test_a_refused_queue_command_says_why_and_changes_nothing(
    url: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], says: str
) -> None:
    _, before, _ = run(capsys, "queue", "show", EVENT, "--storage", url)
    code, out, err = run(capsys, *argv, "--storage", url)
    assert code == 2
    assert says in err
    assert out == ""
    _, after, _ = run(capsys, "queue", "show", EVENT, "--storage", url)
    assert after == before
