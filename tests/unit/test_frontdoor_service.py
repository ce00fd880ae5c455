"""The front door's service over the memory backend: registration, the lottery, the
waiting room's tickets, polls and admissions, proof of work, refusals counted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lampo.domain.errors import (
    AlreadyRegistered,
    BadToken,
    Closed,
    InvalidRequest,
    LampoError,
    NotAdmitted,
    NotDrawn,
    NotOpen,
    NotRegistered,
    ProofOfWork,
    RegistrationClosed,
    UnknownEvent,
    UnknownMarket,
)
from lampo.domain.event import SaleEvent
from lampo.domain.frontdoor import PlaceState, pow_ok, rank_key, solve
from lampo.services.clock import ManualClock
from lampo.services.frontdoor import FrontDoorService
from lampo.services.sales import Sales
from lampo.storage.door import door_store
from lampo.storage.memory import MemoryStorage
from tests.factories import CN_OPENS, door_event

SECRET = b"a test secret of 32 bytes, no more"
PHONE = "ab" * 10
DEVICE = "cd" * 10


def open_door(event: SaleEvent, at: object = None) -> tuple[FrontDoorService, ManualClock]:
    clock = ManualClock(CN_OPENS - timedelta(days=1))
    storage = MemoryStorage()
    sales = Sales(storage, clock=clock)
    sales.open(event)
    return FrontDoorService(sales, door_store(storage), SECRET, cache_seconds=0), clock


# -- registration ----------------------------------------------------------------------------
def test_one_registration_per_account_and_per_phone_when_the_event_says_so() -> None:
    door, _ = open_door(door_event(require_registration=True, unique=("phone",)))
    door.register("fest", "ann", PHONE, DEVICE)
    with pytest.raises(AlreadyRegistered) as again:
        door.register("fest", "ann", "ef" * 10)
    assert again.value.identity == "account"
    with pytest.raises(AlreadyRegistered) as phone:
        door.register("fest", "bob", PHONE)
    assert phone.value.identity == "phone"
    door.register("fest", "bob", "ef" * 10, DEVICE)  # the device need not be unique here
    assert door.registrations("fest") == 2
    assert [r.account for r in door.export("fest")] == ["ann", "bob"]
    assert door.refusals[("fest", "already-registered")] == 2


def test_a_unique_identity_must_be_given_and_be_a_hash() -> None:
    door, _ = open_door(door_event(require_registration=True, unique=("device",)))
    with pytest.raises(InvalidRequest):
        door.register("fest", "ann", PHONE)
    with pytest.raises(InvalidRequest):
        door.register("fest", "ann", device_hash="+91 98100 00000")
    assert door.registrations("fest") == 0
    assert door.refusals[("fest", "invalid-request")] == 2


def test_registration_is_taken_inside_its_window_only() -> None:
    door, clock = open_door(door_event(require_registration=True))
    clock.set(CN_OPENS)
    with pytest.raises(RegistrationClosed):
        door.register("fest", "ann")
    clock.set(CN_OPENS - timedelta(days=8))
    with pytest.raises(RegistrationClosed):
        door.register("fest", "ann")
    assert door.registrations("fest") == 0


def test_the_lottery_draws_once_and_leaves_the_others_out() -> None:
    event = door_event(
        "fest",
        {"tv-55": 1},
        require_registration=True,
        lottery_factor=2,
        registration_closes=CN_OPENS - timedelta(hours=1),
    )
    door, clock = open_door(event)
    for n in range(10):
        door.register("fest", f"c{n}")
    with pytest.raises(InvalidRequest):
        door.draw("fest")  # registration still open
    clock.set(CN_OPENS - timedelta(minutes=5))
    first = door.draw("fest")
    assert len(first.winners) == 2
    assert first.registrations == 10
    assert door.draw("fest") == first  # the first stands
    loser = next(f"c{n}" for n in range(10) if f"c{n}" not in first.winners)
    with pytest.raises(NotDrawn):
        door.join("fest", "CN", loser)
    assert door.join("fest", "CN", first.winners[0]).seq == 0


def test_a_registered_only_event_refuses_others_in_its_queue() -> None:
    door, _ = open_door(door_event(require_registration=True))
    door.register("fest", "ann")
    door.join("fest", "CN", "ann")
    with pytest.raises(NotRegistered):
        door.join("fest", "CN", "bob")
    assert door.state("fest", "CN").joined == 1


# -- the waiting room ----------------------------------------------------------------------
def test_the_prequeue_is_numbered_at_opening_and_later_joins_follow_it() -> None:
    door, clock = open_door(door_event())
    early = {f"e{n}": door.join("fest", "CN", f"e{n}") for n in range(20)}
    assert {t.seq for t in early.values()} == {0}
    assert door.join("fest", "CN", "e3") == early["e3"]  # the same ticket, token and all
    poll = door.poll(early["e0"].token, "e0")
    assert (poll.state, poll.seq, poll.ahead) == (PlaceState.WAITING, 0, None)
    assert poll.eta_seconds == pytest.approx(86_400)
    clock.set(CN_OPENS)
    seqs = {buyer: door.poll(t.token, buyer).seq for buyer, t in early.items()}
    assert sorted(seqs.values()) == list(range(1, 21))
    with pytest.raises(NotOpen):  # secret until the opening
        door.queue_seed("fest", "IN")
    seed = bytes.fromhex(door.queue_seed("fest", "CN"))
    ticket_ids = {b: door.store.entry("fest", "CN", b) for b in early}
    redone = sorted(early, key=lambda b: (rank_key(seed, ticket_ids[b].ticket), b))  # type: ignore[union-attr]
    assert [seqs[b] for b in redone] == list(range(1, 21))
    late = [door.join("fest", "CN", f"l{n}").seq for n in range(5)]
    assert late == [21, 22, 23, 24, 25]
    state = door.state("fest", "CN")
    assert (state.joined, state.prequeue, state.frozen) == (25, 20, True)


def test_a_visitor_is_admitted_when_the_line_passes_and_only_for_a_while() -> None:
    event = door_event(admit_per_second=2, admission_seconds=60)
    door, clock = open_door(event)
    clock.set(CN_OPENS)
    tickets = [door.join("fest", "CN", f"c{n}") for n in range(6)]
    waiting = door.poll(tickets[4].token, "c4")
    assert (waiting.state, waiting.ahead) == (PlaceState.WAITING, 4)
    assert waiting.eta_seconds == pytest.approx(2.5)
    clock.advance(2.5)
    admitted = door.poll(tickets[4].token, "c4")
    assert admitted.state is PlaceState.ADMITTED
    assert admitted.admission is not None
    assert door.check_admission(admitted.admission, "c4", "fest", "CN") == (
        door.check_admission(door.poll(tickets[4].token, "c4").admission or "", "c4", "fest", "CN")
    )
    for buyer, event_id, market in (("c5", "fest", "CN"), ("c4", "fest", "IN")):
        with pytest.raises(NotAdmitted):
            door.check_admission(admitted.admission, buyer, event_id, market)
    clock.advance(60)
    with pytest.raises(NotAdmitted):
        door.check_admission(admitted.admission, "c4", "fest", "CN")
    with pytest.raises(NotAdmitted):
        door.poll(tickets[4].token, "c4")
    assert door.refusals[("fest", "not-admitted")] == 4


def test_a_ticket_is_its_buyers_only_and_a_forged_one_is_refused() -> None:
    door, clock = open_door(door_event())
    clock.set(CN_OPENS)
    ticket = door.join("fest", "CN", "ann")
    with pytest.raises(NotAdmitted):
        door.poll(ticket.token, "bob")
    with pytest.raises(BadToken):
        door.poll(ticket.token[:-2] + "xx", "ann")
    other = FrontDoorService(door.sales, door.store, b"another secret of thirty bytes")
    with pytest.raises(BadToken):
        other.poll(ticket.token, "ann")


@given(junk=st.one_of(st.text(max_size=80), st.binary(max_size=40), st.integers(), st.none()))
def test_anything_but_a_ticket_is_refused_as_a_bad_token(junk: object) -> None:
    door, _ = open_door(door_event())
    with pytest.raises(BadToken):
        door.poll(junk, "ann")  # type: ignore[arg-type]
    with pytest.raises((BadToken, NotAdmitted)):
        door.check_admission(junk, "ann", "fest", "CN")  # type: ignore[arg-type]


def test_the_room_says_sold_out_once_nothing_is_left_or_held() -> None:
    event = door_event("fest", {"tv-55": 1}, admit_per_second=1000)
    door, clock = open_door(event)
    clock.set(CN_OPENS)
    ticket = door.join("fest", "CN", "ann")
    assert door.poll(ticket.token, "ann").state is PlaceState.WAITING  # the line starts at 0
    clock.advance(0.01)
    assert door.poll(ticket.token, "ann").state is PlaceState.ADMITTED
    hold = door.sales.reserve("fest", "bob", "CN", {"tv-55": 1})
    assert door.poll(ticket.token, "ann").state is PlaceState.ADMITTED  # held: may come back
    door.sales.pay(hold.id, "p1")
    assert door.poll(ticket.token, "ann").state is PlaceState.SOLD_OUT


def test_joining_needs_the_proof_of_work_the_event_asks_for() -> None:
    door, clock = open_door(door_event(pow_bits=8))
    clock.set(CN_OPENS)
    with pytest.raises(ProofOfWork):
        door.join("fest", "CN", "ann")
    challenge = door.challenge("fest", "ann")
    assert challenge.bits == 8
    solution = solve(challenge.token, 8)
    # not a solution (one answer in 256 solves 8 bits by chance: it must be checked)
    wrong = next(s for s in map(str, range(1000)) if not pow_ok(challenge.token, s, 8))
    with pytest.raises(ProofOfWork):
        door.join("fest", "CN", "ann", challenge.token, wrong)
    with pytest.raises(ProofOfWork):
        door.join("fest", "CN", "bob", challenge.token, solution)  # another buyer's
    assert door.join("fest", "CN", "ann", challenge.token, solution).seq == 1
    clock.advance(121)
    with pytest.raises(ProofOfWork):
        door.join("fest", "CN", "ann", challenge.token, solution)  # expired
    assert door.refusals[("fest", "proof-of-work")] == 4
    assert door.state("fest", "CN").joined == 1


def test_the_rate_changes_from_now_on() -> None:
    door, clock = open_door(door_event(admit_per_second=1))
    clock.set(CN_OPENS)
    for n in range(100):
        door.join("fest", "CN", f"c{n}")
    clock.advance(10)
    assert door.state("fest", "CN").admitted == 10
    door.set_rate("fest", "CN", 5)
    clock.advance(2)
    state = door.state("fest", "CN")
    assert (state.admitted, state.waiting, state.rate) == (20, 80, 5)
    assert state.eta_last_seconds == pytest.approx(16)


def test_a_closed_market_takes_no_joins() -> None:
    event = door_event()
    door, clock = open_door(event)
    clock.set(event.windows["CN"].closes)
    with pytest.raises(Closed):
        door.join("fest", "CN", "ann")
    assert door.state("fest", "CN").joined == 0


@given(
    account=st.one_of(st.text(max_size=140), st.integers(), st.none()),
    phone=st.one_of(st.none(), st.text(max_size=140), st.binary(max_size=20)),
)
def test_hostile_registrations_are_refused_and_keep_nothing(account: object, phone: object) -> None:
    door, _ = open_door(door_event(require_registration=True, unique=("phone",)))
    try:
        door.register("fest", account, phone)  # type: ignore[arg-type]
    except InvalidRequest:
        assert door.registrations("fest") == 0
        assert door.refusals[("fest", "invalid-request")] == 1
    else:  # only a well-formed account with a well-formed phone hash gets in
        assert isinstance(account, str)
        assert isinstance(phone, str)
        assert [r.account for r in door.export("fest")] == [account]


@given(
    buyer=st.one_of(st.text(max_size=140), st.integers(), st.none()),
    market=st.text(max_size=8),
    solution=st.text(max_size=80),
)
def test_hostile_joins_are_refused_and_queue_nobody(
    buyer: object, market: str, solution: str
) -> None:
    door, clock = open_door(door_event(pow_bits=12))
    clock.set(CN_OPENS)
    with pytest.raises(LampoError):
        door.join("fest", market, buyer, "ticket.x.y", solution)  # type: ignore[arg-type]
    assert door.state("fest", "CN").joined == 0
    assert sum(door.refusals.values()) == 1


def test_unknown_events_and_markets_are_refused_and_counted() -> None:
    door, _ = open_door(door_event())
    with pytest.raises(UnknownEvent):
        door.registrations("nope")
    with pytest.raises(UnknownMarket):
        door.state("fest", "XX")
    assert door.refusals == {("nope", "unknown-event"): 1, ("fest", "unknown-market"): 1}


def test_a_quiet_spell_banks_no_admissions_for_the_next_burst() -> None:
    door, clock = open_door(door_event(admit_per_second=1))
    clock.set(CN_OPENS)
    first = door.join("fest", "CN", "early")
    clock.advance(100)
    assert door.poll(first.token, "early").state is PlaceState.ADMITTED
    burst = [door.join("fest", "CN", f"c{n}") for n in range(10)]
    last = door.poll(burst[-1].token, "c9")
    assert (last.state, last.seq, last.ahead) == (PlaceState.WAITING, 11, 9)
    clock.advance(5)
    assert door.state("fest", "CN").admitted == 6


def test_an_admission_keeps_its_expiry_when_the_rate_changes() -> None:
    door, clock = open_door(door_event(admit_per_second=1, admission_seconds=60))
    clock.set(CN_OPENS)
    tickets = [door.join("fest", "CN", f"c{n}") for n in range(3)]
    clock.advance(2)
    first = door.poll(tickets[1].token, "c1")
    assert first.state is PlaceState.ADMITTED
    assert first.admission_expires == CN_OPENS + timedelta(seconds=62)
    clock.advance(30)
    door.set_rate("fest", "CN", 10)  # rebased at 32 s, past c1's place
    again = door.poll(first.ticket, "c1")
    assert again.admission_expires == first.admission_expires
    assert again.admission == first.admission


def test_a_poll_from_a_cached_view_sees_a_restarted_line() -> None:
    """A process's cached counters predate the joins after a lull: a newcomer's seq is
    past them, so its poll reads them again and finds the line restarted."""
    event = door_event(admit_per_second=1)
    door, clock = open_door(event)
    cached = FrontDoorService(door.sales, door.store, SECRET, cache_seconds=3_600)
    clock.set(CN_OPENS)
    first = cached.join("fest", "CN", "early")
    clock.advance(100)
    assert cached.poll(first.token, "early").state is PlaceState.ADMITTED  # cached now
    burst = [cached.join("fest", "CN", f"c{n}") for n in range(10)]
    last = cached.poll(burst[-1].token, "c9")
    assert (last.state, last.ahead) == (PlaceState.WAITING, 9)
    assert cached.poll(burst[0].token, "c0").state is PlaceState.WAITING


# -- the adaptive rate ----------------------------------------------------------------------
def test_an_adaptive_room_slows_down_when_the_buy_path_is_slow_and_speeds_up_when_fast() -> None:
    door, clock = open_door(door_event(admit_per_second=100, target_latency_ms=50))
    clock.set(CN_OPENS)
    for n in range(50):
        door.join("fest", "CN", f"c{n}")
    assert door.adapt("fest", "CN") is None  # nothing observed: nothing to adapt to
    for _ in range(20):
        door.observe("fest", "CN", 0.200)  # the buy path answers in 200 ms
    assert door.adapt("fest", "CN") == 75
    assert door.state("fest", "CN").rate == 75  # kept in storage: every worker sees it
    door.observe("fest", "CN", 0.001)
    assert door.adapt("fest", "CN") is None  # at most once a second
    clock.advance(1)
    assert door.adapt("fest", "CN") == 82  # fast now: a tenth more
    assert door.state("fest", "CN").rate == 82


def test_an_adaptive_rate_stays_between_one_and_its_ceiling() -> None:
    door, clock = open_door(door_event(admit_per_second=2, target_latency_ms=50))
    clock.set(CN_OPENS)
    door.join("fest", "CN", "c1")
    for _ in range(60):
        door.observe("fest", "CN", 0.0)
        door.adapt("fest", "CN")
        clock.advance(1)
    assert door.state("fest", "CN").rate == 20  # ADAPT_CEILING x admit_per_second
    for _ in range(60):
        door.observe("fest", "CN", 9.0)
        door.adapt("fest", "CN")
        clock.advance(1)
    assert door.state("fest", "CN").rate == 1


def test_a_room_with_a_fixed_rate_does_not_adapt() -> None:
    door, clock = open_door(door_event(admit_per_second=10))
    clock.set(CN_OPENS)
    door.join("fest", "CN", "c1")
    door.observe("fest", "CN", 5.0)
    assert door.adapt("fest", "CN") is None
    assert door.state("fest", "CN").rate == 10


# -- the poll answered from memory ------------------------------------------------------------
def cached_door(event: SaleEvent) -> tuple[FrontDoorService, ManualClock]:
    """A service whose poll caches never go stale within a test."""
    door, clock = open_door(event)
    return FrontDoorService(door.sales, door.store, SECRET, cache_seconds=3_600), clock


def test_the_poll_from_memory_leaves_to_storage_what_it_cannot_know() -> None:
    door, clock = cached_door(door_event(admit_per_second=1))
    early = door.join("fest", "CN", "early")  # in the pre-queue: no number yet
    assert door.poll_cached(early.token, "early") == door.poll(early.token, "early")
    clock.set(CN_OPENS)
    assert door.poll_cached(early.token, "early") is None  # numbered by storage only
    numbered = door.poll(early.token, "early")
    late = door.join("fest", "CN", "late")
    fresh = FrontDoorService(door.sales, door.store, SECRET, cache_seconds=3_600)
    assert fresh.poll_cached(late.token, "late") is None  # nothing cached in this process
    assert fresh.poll(late.token, "late") == fresh.poll_cached(late.token, "late")
    assert door.poll_cached(numbered.ticket, "early") == door.poll(numbered.ticket, "early")
    with pytest.raises(NotAdmitted):
        door.poll_cached(numbered.ticket, "late")  # refused on the loop as in the pool
    with pytest.raises(BadToken):
        door.poll_cached(numbered.ticket[:-2] + "xx", "early")
    assert door.refusals[("fest", "not-admitted")] == 1
    assert door.refusals[("", "bad-token")] == 1


def test_the_poll_from_memory_leaves_a_due_adaptation_to_storage() -> None:
    door, clock = cached_door(door_event(admit_per_second=10, target_latency_ms=50))
    clock.set(CN_OPENS)
    ticket = door.join("fest", "CN", "c1")
    door.poll(ticket.token, "c1")
    assert door.poll_cached(ticket.token, "c1") is not None
    door.observe("fest", "CN", 0.5)
    assert door.poll_cached(ticket.token, "c1") is None  # an adaptation is due: it writes
    door.poll(ticket.token, "c1")
    assert door.state("fest", "CN").rate < 10
    assert door.poll_cached(ticket.token, "c1") is not None


@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("join"), st.integers(0, 7)),
            st.tuples(st.just("poll"), st.integers(0, 7)),
            st.tuples(st.just("poll"), st.integers(0, 7)),
            st.tuples(st.just("wait"), st.floats(0, 5)),
            st.tuples(st.just("rate"), st.integers(1, 5)),
            st.tuples(st.just("buy"), st.integers(1, 6)),
        ),
        min_size=10,
        max_size=60,
    )
)
@settings(max_examples=300)
def test_whatever_the_poll_from_memory_answers_the_poll_answers_too(
    steps: list[tuple[str, object]],
) -> None:
    """The loop's poll (``poll_cached``) answers exactly what ``poll`` answers from the
    same caches at the same instant (the same place, the same tokens, the same refusal),
    or leaves the poll to it."""
    door, clock = cached_door(door_event("fest", {"phone-red": 10}, admit_per_second=2))
    clock.set(CN_OPENS - timedelta(seconds=3))
    tickets: dict[int, str] = {}
    for step, arg in steps:
        if step == "join":
            tickets[arg] = door.join("fest", "CN", f"c{arg}").token  # type: ignore[index]
        elif step == "wait":
            clock.advance(arg)  # type: ignore[arg-type]
        elif step == "rate" and clock() >= CN_OPENS:
            door.set_rate("fest", "CN", arg)  # type: ignore[arg-type]
        elif step == "buy" and clock() >= CN_OPENS:
            try:  # paid at once: units held would keep the room waiting
                hold = door.sales.reserve("fest", f"b{clock()}", "CN", {"phone-red": arg})  # type: ignore[dict-item]
                door.sales.pay(hold.id, f"p-{hold.id}")
            except LampoError:
                pass
        elif step == "poll" and arg in tickets:
            token, buyer = tickets[arg], f"c{arg}"  # type: ignore[index]
            try:
                fast: object = door.poll_cached(token, buyer)
            except LampoError as refusal:
                fast = refusal
            try:
                slow: object = door.poll(token, buyer)
            except LampoError as refusal:
                slow = refusal
            if fast is None:
                continue
            if isinstance(fast, LampoError):
                assert type(fast) is type(slow)
                assert str(fast) == str(slow)
            else:
                assert fast == slow
                tickets[arg] = slow.ticket  # type: ignore[attr-defined]


def test_warming_reads_again_what_the_polled_queues_cache() -> None:
    """Another worker changes the rate: this one's polls see it once ``warm`` has read
    the queues polled since the last time again, and it answers them from memory."""
    door, clock = cached_door(door_event(admit_per_second=1))
    other = FrontDoorService(door.sales, door.store, SECRET, cache_seconds=3_600)
    clock.set(CN_OPENS)
    tickets = [door.join("fest", "CN", f"c{n}") for n in range(10)]
    assert door.warm() == 0  # nothing polled yet
    assert door.poll(tickets[9].token, "c9").ahead == 9
    other.set_rate("fest", "CN", 100)
    clock.advance(0.05)  # five more at the new rate, none at the old
    assert door.poll_cached(tickets[9].token, "c9").ahead == 9  # type: ignore[union-attr]
    assert door.polled()
    assert door.warm() == 1
    assert not door.polled()
    assert door.poll_cached(tickets[9].token, "c9").ahead == 4  # type: ignore[union-attr]


def test_warming_reads_again_whether_each_polled_market_sold_out() -> None:
    """One read of the event's stock serves every polled market of it."""
    event = door_event("fest", {"phone-red": 2}, admit_per_second=1)
    door, clock = cached_door(event)
    clock.set(max(w.opens for w in event.windows.values()))  # both markets open
    tickets = {m: door.join("fest", m, f"c-{m}") for m in ("CN", "IN")}
    for market, ticket in tickets.items():
        assert door.poll(ticket.token, f"c-{market}").state is PlaceState.WAITING
    hold = door.sales.reserve("fest", "buyer", "CN", {"phone-red": 2})
    door.sales.pay(hold.id, "pay-1")
    assert door.warm() == 2
    for market, ticket in tickets.items():
        found = door.poll_cached(ticket.token, f"c-{market}")
        assert found is not None
        assert found.state is PlaceState.SOLD_OUT
