"""Admissions, driven through the service on real storage, the buy path's check as the
rehearsal makes it (``sim.door.gate``: the admission verified and bound to the buyer, the
hold keyed by it): none used twice (threads), none transferable, none outliving its
expiry, no forged one taken."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo.domain.errors import BadToken, LampoError, NotAdmitted
from lampo.domain.frontdoor import PlaceState
from lampo.domain.holds import Hold
from lampo.sim.door import admission_key, gate
from tests.factories import CN_OPENS, door_event
from tests.fairness.conftest import Door

_events = itertools.count()


def admitted(door: Door, buyers: int, stock: int = 1_000) -> tuple[str, dict[str, str]]:
    """A new event whose ``buyers`` joined after the opening and were all admitted: the
    event and each buyer's admission."""
    event_id = f"adm{next(_events)}"
    door.open(door_event(event_id, {"phone-red": stock}, admit_per_second=1_000))
    door.clock.set(CN_OPENS + timedelta(seconds=1))
    tickets = {f"b{n}": door.service.join(event_id, "CN", f"b{n}").token for n in range(buyers)}
    door.clock.set(CN_OPENS + timedelta(seconds=2))
    out = {}
    for buyer, ticket in tickets.items():
        poll = door.service.poll(ticket, buyer)
        assert poll.state is PlaceState.ADMITTED
        assert poll.admission is not None
        out[buyer] = poll.admission
    return event_id, out


def buy(door: Door, event: str, admission: str, buyer: str) -> Hold | LampoError:
    """One buy through the gate: one unit of phone-red."""
    key = gate(door.service, admission, buyer, event, "CN")
    if isinstance(key, LampoError):
        return key
    try:
        return door.sales.reserve(event, buyer, "CN", {"phone-red": 1}, key=key)
    except LampoError as refused:
        return refused


def test_an_admission_used_from_many_threads_at_once_places_one_hold(door: Door) -> None:
    """Each of 6 admissions is sent 8 times at once (48 threads): every answer for an
    admission is the same hold, and the stock holds one unit per admission."""
    event_id, admissions = admitted(door, 6)
    answers: dict[str, list[Hold | LampoError]] = {b: [] for b in admissions}
    barrier = threading.Barrier(48)

    def send(buyer: str) -> None:
        barrier.wait()
        answers[buyer].append(buy(door, event_id, admissions[buyer], buyer))

    threads = [threading.Thread(target=send, args=(b,)) for b in admissions for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for buyer, got in answers.items():
        assert all(isinstance(h, Hold) for h in got), got
        assert len({h.id for h in got if isinstance(h, Hold)}) == 1, buyer
    level = door.storage.stock(event_id)["phone-red"]
    assert level.held == 6
    holds = list(door.storage.holds(event_id))
    assert len(holds) == 6


def test_an_admission_places_one_hold_and_a_second_request_under_it_is_not_another(
    door: Door,
) -> None:
    event_id, admissions = admitted(door, 1)
    first = buy(door, event_id, admissions["b0"], "b0")
    assert isinstance(first, Hold)
    again = buy(door, event_id, admissions["b0"], "b0")
    assert isinstance(again, Hold)
    assert again.id == first.id  # the replay of the first
    key = gate(door.service, admissions["b0"], "b0", event_id, "CN")
    assert isinstance(key, str)
    assert key == admission_key(key.removeprefix("adm:"))
    with pytest.raises(LampoError) as other:  # another basket under the same admission
        door.sales.reserve(event_id, "b0", "CN", {"phone-red": 2}, key=str(key))
    assert other.value.reason == "idempotency-conflict"
    assert door.storage.stock(event_id)["phone-red"].held == 1


def test_an_admission_is_not_transferable(door: Door) -> None:
    """Another buyer, another event or another market: refused, nothing held."""
    event_id, admissions = admitted(door, 2)
    other_event, _ = admitted(door, 1)
    refused = buy(door, event_id, admissions["b0"], "b1")
    assert isinstance(refused, NotAdmitted)
    assert "buyer" in refused.problem
    with pytest.raises(NotAdmitted):
        door.service.check_admission(admissions["b0"], "b0", other_event, "CN")
    with pytest.raises(NotAdmitted):
        door.service.check_admission(admissions["b0"], "b0", event_id, "IN")
    assert door.storage.stock(event_id)["phone-red"].held == 0
    assert door.service.refusals[(event_id, "not-admitted")] == 2


def test_no_admission_outlives_its_expiry(door: Door) -> None:
    """Good until the expiry the poll announced, at most ``admission_seconds`` after it was
    given, not a microsecond more: then the buy is refused and a poll gives no new
    admission."""
    event_id, _ = admitted(door, 1)
    event = door.sales.event(event_id)
    assert event.front_door is not None
    ticket = door.service.join(event_id, "CN", "b0").token  # the same place again
    given = door.clock()
    poll = door.service.poll(ticket, "b0")
    assert poll.admission is not None
    assert poll.admission_expires is not None
    expires = poll.admission_expires
    assert given < expires <= given + timedelta(seconds=event.front_door.admission_seconds)
    door.clock.set(expires - timedelta(microseconds=1))
    assert isinstance(gate(door.service, poll.admission, "b0", event_id, "CN"), str)
    door.clock.set(expires)
    refused = buy(door, event_id, poll.admission, "b0")
    assert isinstance(refused, NotAdmitted)
    assert "expired" in refused.problem
    with pytest.raises(NotAdmitted):
        door.service.poll(ticket, "b0")
    assert door.storage.stock(event_id)["phone-red"].held == 0


def test_without_an_admission_nothing_is_bought(door: Door) -> None:
    event_id, _ = admitted(door, 1)
    refused = buy(door, event_id, "", "b0")
    assert isinstance(refused, NotAdmitted)
    assert door.storage.stock(event_id)["phone-red"].held == 0


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edit=st.one_of(
        st.text(max_size=300),
        st.tuples(st.integers(0, 400), st.characters(codec="ascii")),
    )
)
def test_a_forged_or_altered_admission_is_refused_and_changes_nothing(
    door: Door, edit: str | tuple[int, str]
) -> None:
    """Any text, or a real admission with one character changed: never an admission id,
    nothing held."""
    event_id, admissions = admitted(door, 1)
    real = admissions["b0"]
    if isinstance(edit, tuple):
        at, char = edit
        at %= len(real)
        if real[at] == char:
            return
        token = real[:at] + char + real[at + 1 :]
    else:
        token = edit
    result = gate(door.service, token, "b0", event_id, "CN")
    assert isinstance(result, BadToken | NotAdmitted), result
    assert door.storage.stock(event_id)["phone-red"].held == 0
