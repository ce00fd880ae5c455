"""A hypothesis state machine over the front door: register, draw, join and poll, with
time moving through the registration window, the wait before the opening and the sale.

Each rule predicts its outcome from a model of what was done before it (who registered,
with which phone; the draw; who queued when), so a wrong answer fails at once; a refusal
must change nothing of the front door's state, and is counted. After every step: the
registration count, the queue's counters and the refusal counts agree with the model;
sequence numbers seen are distinct, the pre-queue's 1..P and the later ones after them
in the order they joined.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from lampo.domain.errors import (
    AlreadyRegistered,
    InvalidRequest,
    LampoError,
    NotDrawn,
    NotRegistered,
    RegistrationClosed,
)
from lampo.domain.frontdoor import PlaceState, draw
from lampo.services.clock import ManualClock
from lampo.services.frontdoor import FrontDoorService, Ticket
from lampo.services.sales import Sales
from lampo.storage import Storage
from lampo.storage.door import Draw, door_store
from tests.contract.conftest import MEMORY, REDIS, SQLITE, Backend
from tests.factories import CN_OPENS, door_event

EVENT = door_event(
    "machine",
    {"tv-55": 2},
    require_registration=True,
    unique=("phone",),
    lottery_factor=1,
    registration_closes=CN_OPENS - timedelta(hours=1),
    admit_per_second=1,
)
ACCOUNTS = ["a", "b", "c", "d", "e"]
PHONES = ["11" * 8, "22" * 8, "33" * 8]
#: The clock in each phase: registration open, closed before the opening, the sale.
PHASES = [
    CN_OPENS - timedelta(days=2),
    CN_OPENS - timedelta(minutes=30),
    CN_OPENS + timedelta(minutes=1),
]


class DoorMachine(RuleBasedStateMachine):
    backend: Backend
    tmp: Path

    def __init__(self) -> None:
        super().__init__()
        self.store: Storage = self.backend.open(Path(tempfile.mkdtemp(dir=self.tmp)))
        self.clock = ManualClock(PHASES[0])
        sales = Sales(self.store, clock=self.clock)
        sales.open(EVENT)
        self.door = FrontDoorService(
            sales, door_store(self.store), b"the machine's secret, 32 bytes..", cache_seconds=0
        )
        self.phase = 0
        self.registered: dict[str, str] = {}  # account -> phone
        self.draw: Draw | None = None
        self.tickets: dict[str, Ticket] = {}
        self.early: set[str] = set()  # joined before the opening
        self.late: list[str] = []  # joined after it, in order
        self.seqs: dict[str, int] = {}
        self.refused = 0

    def teardown(self) -> None:
        self.store.close()

    def _state(self) -> tuple[object, ...]:
        d = self.door.store
        return (
            d.registrations("machine"),
            list(d.export("machine")),
            d.drawn("machine"),
            d.counts("machine", "CN"),
            [d.entry("machine", "CN", a) for a in ACCOUNTS],
        )

    def _refused(self, expected: type[LampoError], attempt: object) -> LampoError:
        before = self._state()
        with pytest.raises(expected) as refusal:
            attempt()  # type: ignore[operator]
        assert self._state() == before
        self.refused += 1
        return refusal.value

    @rule()
    def next_phase(self) -> None:
        if self.phase < len(PHASES) - 1:
            self.phase += 1
            self.clock.set(PHASES[self.phase])

    @rule(account=st.sampled_from(ACCOUNTS), phone=st.sampled_from(PHONES))
    def register(self, account: str, phone: str) -> None:
        attempt = lambda: self.door.register("machine", account, phone)  # noqa: E731
        if self.phase != 0:
            self._refused(RegistrationClosed, attempt)
        elif account in self.registered:
            assert self._refused(AlreadyRegistered, attempt).identity == "account"  # type: ignore[attr-defined]
        elif phone in self.registered.values():
            assert self._refused(AlreadyRegistered, attempt).identity == "phone"  # type: ignore[attr-defined]
        else:
            assert attempt().account == account
            self.registered[account] = phone

    @rule()
    def draw_the_lottery(self) -> None:
        attempt = lambda: self.door.draw("machine")  # noqa: E731
        if self.phase == 0 and self.draw is None:
            self._refused(InvalidRequest, attempt)
            return
        got = attempt()
        if self.draw is None:
            accounts = sorted(self.registered)
            assert sorted(r.account for r in self.door.export("machine")) == accounts
            assert list(got.winners) == draw(bytes.fromhex(got.seed), accounts, 2)
            self.draw = got
        assert got == self.draw

    @rule(buyer=st.sampled_from(ACCOUNTS))
    def join(self, buyer: str) -> None:
        attempt = lambda: self.door.join("machine", "CN", buyer)  # noqa: E731
        if self.draw is not None and buyer not in self.draw.winners:
            self._refused(NotDrawn, attempt)
            return
        if self.draw is None and buyer not in self.registered:
            self._refused(NotRegistered, attempt)
            return
        ticket = attempt()
        if buyer in self.tickets:  # the same place: unnumbered before the opening
            if self.phase < 2:
                assert ticket.seq == 0
            else:
                assert self.seqs.setdefault(buyer, ticket.seq) == ticket.seq
            return
        self.tickets[buyer] = ticket
        if self.phase < 2:
            assert ticket.seq == 0
            self.early.add(buyer)
        else:
            self.late.append(buyer)
            self.seqs[buyer] = ticket.seq

    @rule(buyer=st.sampled_from(ACCOUNTS))
    def poll(self, buyer: str) -> None:
        ticket = self.tickets.get(buyer)
        if ticket is None:
            return
        got = self.door.poll(ticket.token, buyer)
        if self.phase < 2:
            assert (got.state, got.seq) == (PlaceState.WAITING, 0)
            return
        assert got.seq >= 1
        assert self.seqs.setdefault(buyer, got.seq) == got.seq
        assert got.state in (PlaceState.WAITING, PlaceState.ADMITTED)

    @invariant()
    def counts_agree(self) -> None:
        d = self.door.store
        assert d.registrations("machine") == len(self.registered)
        counts = d.counts("machine", "CN")
        assert counts.joined == len(self.tickets)
        assert counts.prequeue == len(self.early)
        assert sum(self.door.refusals.values()) == self.refused

    @invariant()
    def seqs_are_fair(self) -> None:
        seen = list(self.seqs.values())
        assert len(seen) == len(set(seen))
        for buyer in self.early & self.seqs.keys():
            assert 1 <= self.seqs[buyer] <= len(self.early)
        late = [self.seqs[b] for b in self.late]
        p = len(self.early)
        assert late == list(range(p + 1, p + 1 + len(late)))


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(MEMORY, id="memory"),
        pytest.param(SQLITE, id="sqlite", marks=pytest.mark.sqlite),
        pytest.param(REDIS, id="redis", marks=pytest.mark.redis),
    ],
)
def test_every_sequence_of_front_door_steps_keeps_its_rules(
    backend: Backend, tmp_path: Path
) -> None:
    machine = type(
        "DoorMachineOn" + backend.name.title(),
        (DoorMachine,),
        {"backend": backend, "tmp": tmp_path},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(max_examples=40, stateful_step_count=30, deadline=None),
    )
