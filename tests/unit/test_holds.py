from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lampo.domain.errors import (
    REFUSALS,
    AlreadyPaid,
    AlreadyRegistered,
    BadToken,
    Closed,
    HoldExpired,
    IdempotencyConflict,
    IllegalTransition,
    InvalidRequest,
    LampoError,
    LimitExceeded,
    NotAdmitted,
    NotDrawn,
    NotOpen,
    NotRegistered,
    ProofOfWork,
    RegistrationClosed,
    SoldOut,
    Unavailable,
    UnknownEvent,
    UnknownHold,
    UnknownMarket,
    UnknownSku,
    UpdateRefused,
    refusal_from_detail,
)
from lampo.domain.holds import (
    TRANSITIONS,
    Action,
    Hold,
    HoldLine,
    HoldState,
    ReserveRequest,
    StockLevel,
)
from lampo.domain.market import Channel, ChannelKind
from lampo.domain.money import Money
from lampo.domain.totals import Totals, recount

T0 = datetime(2015, 4, 8, 2, 0, tzinfo=UTC)
BEFORE_EXPIRY = T0 + timedelta(seconds=60)
AFTER_EXPIRY = T0 + timedelta(seconds=900)


def a_hold(state: HoldState = HoldState.HELD, payment_id: str = "", **kw: object) -> Hold:
    hold = Hold(
        id="h1",
        event="fest",
        customer="c1",
        market="CN",
        channel=Channel(),
        lines=(HoldLine("phone-red", 2, 79_900), HoldLine("tv-55", 1, 299_900)),
        currency="CNY",
        created_at=T0,
        expires_at=T0 + timedelta(seconds=900),
    )
    return replace(hold, state=state, payment_id=payment_id, **kw)  # type: ignore[arg-type]


def move(hold: Hold, action: Action, payment_id: str = "p1", now: datetime = BEFORE_EXPIRY) -> Hold:
    if action is Action.PAY:
        return hold.pay(payment_id, now)
    if action is Action.RELEASE:
        return hold.release(now)
    if action is Action.EXPIRE:
        return hold.expire(AFTER_EXPIRY)
    return hold.refund(now)


def test_a_hold_adds_up_its_lines() -> None:
    hold = a_hold()
    assert hold.amount == Money(2 * 79_900 + 299_900, "CNY")
    assert hold.units == 3
    assert hold.quantity_of("phone-red") == 2
    assert hold.quantity_of("phone-black") == 0
    assert not hold.is_order


@pytest.mark.parametrize(("start", "action"), sorted(TRANSITIONS))
def test_every_legal_move_reaches_its_state(start: HoldState, action: Action) -> None:
    before = a_hold(start, payment_id="p0" if start is HoldState.PAID else "")
    after = move(before, action)
    assert after.state is TRANSITIONS[(start, action)]
    assert after.id == before.id
    assert after.lines == before.lines
    assert before.state is start  # holds are values: the original is unchanged


def test_paying_records_the_payment_and_the_time() -> None:
    paid = a_hold().pay("pay-7", BEFORE_EXPIRY)
    assert (paid.payment_id, paid.paid_at, paid.ended_at) == ("pay-7", BEFORE_EXPIRY, BEFORE_EXPIRY)
    assert paid.is_order


def test_refunding_keeps_the_payment_and_records_the_time() -> None:
    refunded = a_hold().pay("pay-7", BEFORE_EXPIRY).refund(AFTER_EXPIRY)
    assert refunded.state is HoldState.REFUNDED
    assert refunded.payment_id == "pay-7"
    assert refunded.refunded_at == AFTER_EXPIRY
    assert refunded.is_order


ILLEGAL = [
    (state, action)
    for state in HoldState
    for action in Action
    if (state, action) not in TRANSITIONS
    # these have refusals of their own, tested below
    and not (action is Action.PAY and state in (HoldState.PAID, HoldState.EXPIRED))
]


@pytest.mark.parametrize(("start", "action"), ILLEGAL)
def test_every_illegal_move_is_refused_with_its_data(start: HoldState, action: Action) -> None:
    hold = a_hold(start)
    with pytest.raises(IllegalTransition) as caught:
        move(hold, action)
    assert caught.value.detail() == {"hold_id": "h1", "state": start.value, "action": action.value}
    assert caught.value.reason == "illegal-transition"


def test_paying_an_expired_hold_is_refused_with_its_expiry() -> None:
    with pytest.raises(HoldExpired) as caught:
        a_hold(HoldState.EXPIRED).pay("p1", BEFORE_EXPIRY)
    assert caught.value.detail() == {"hold_id": "h1", "expired_at": AFTER_EXPIRY.isoformat()}


def test_paying_after_the_deadline_is_refused_even_before_the_sweeper_ran() -> None:
    with pytest.raises(HoldExpired) as caught:
        a_hold().pay("p1", AFTER_EXPIRY)
    assert caught.value.expired_at == AFTER_EXPIRY


def test_paying_one_second_before_the_deadline_succeeds() -> None:
    paid = a_hold().pay("p1", AFTER_EXPIRY - timedelta(seconds=1))
    assert paid.state is HoldState.PAID


def test_a_second_payment_id_is_refused_naming_the_first() -> None:
    with pytest.raises(AlreadyPaid) as caught:
        a_hold(HoldState.PAID, payment_id="p1").pay("p2", BEFORE_EXPIRY)
    assert caught.value.detail() == {"hold_id": "h1", "payment_id": "p1"}


def test_the_domain_does_not_pay_twice_even_with_the_same_payment_id() -> None:
    # Idempotent replay is storage's job (it returns the stored order); the state machine
    # itself never moves paid -> paid.
    with pytest.raises(IllegalTransition):
        a_hold(HoldState.PAID, payment_id="p1").pay("p1", BEFORE_EXPIRY)


def test_a_hold_cannot_expire_before_its_deadline() -> None:
    with pytest.raises(IllegalTransition) as caught:
        a_hold().expire(BEFORE_EXPIRY)
    assert caught.value.action == "expired"
    assert AFTER_EXPIRY.isoformat() in caught.value.state


@pytest.mark.parametrize("quantity", [0, -1, True, 1.5])
def test_a_line_needs_a_whole_positive_quantity(quantity: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        HoldLine("phone-red", quantity, 100)  # type: ignore[arg-type]
    assert caught.value.field == "quantity"


def test_the_fingerprint_ignores_ids_and_times_but_not_content() -> None:
    first = ReserveRequest("k", a_hold(), (None, None))
    retry = ReserveRequest("k", replace(a_hold(), id="h2", created_at=AFTER_EXPIRY), (None, None))
    other = ReserveRequest(
        "k", replace(a_hold(), lines=(HoldLine("phone-red", 3, 79_900),)), (None,)
    )
    elsewhere = ReserveRequest("k", replace(a_hold(), channel=Channel(ChannelKind.STORE, "s1")), ())
    assert first.fingerprint == retry.fingerprint
    assert first.fingerprint != other.fingerprint
    assert first.fingerprint != elsewhere.fingerprint


@pytest.mark.parametrize(
    ("level", "conserved"),
    [
        (StockLevel("s", 10, 5, 3, 2), True),
        (StockLevel("s", 10, 5, 3, 3), False),
        (StockLevel("s", 10, 11, -1, 0), False),
    ],
)
def test_stock_level_knows_whether_it_is_conserved(level: StockLevel, conserved: bool) -> None:
    assert level.conserved is conserved


def test_recount_counts_paid_holds_only() -> None:
    paid = a_hold(HoldState.PAID, payment_id="p1")
    holds = [a_hold(), paid, a_hold(HoldState.RELEASED), a_hold(HoldState.REFUNDED, "p2")]
    totals = recount(holds)
    assert totals.units == 3
    assert totals.order_count == 1
    assert totals.orders == {("CN", "online", "", ""): (1, paid.amount.amount)}


def test_totals_net_out_a_refund_and_compare_without_zero_rows() -> None:
    paid = a_hold(HoldState.PAID, payment_id="p1")
    live = Totals()
    live.add(paid, 1)
    live.add(paid, -1)
    assert live == Totals()
    assert live != recount([paid])


# -- refusals ---------------------------------------------------------------------------------

REFUSAL_EXAMPLES: list[LampoError] = [
    InvalidRequest("quantity", "must be 1..1000"),
    UnknownEvent("fest"),
    UnknownSku("fest", "phone-x"),
    UnknownMarket("fest", "XX"),
    UnknownHold("h9"),
    NotOpen("IN", T0),
    Closed("CN", T0),
    SoldOut("phone-red", 2, 1),
    LimitExceeded("c1", 2, 2, "phone-red"),
    LimitExceeded("c1", 5, 4),
    HoldExpired("h1", T0),
    IllegalTransition("h1", "paid", "released"),
    AlreadyPaid("h1", "p1"),
    IdempotencyConflict("k1"),
    Unavailable("writer queue full"),
    UpdateRefused("fest", "allocation", "phone-red: 5 units are held or sold, more than 4"),
    BadToken("ticket", "the ticket token's signature does not verify"),
    AlreadyRegistered("fest", "phone"),
    NotRegistered("fest", "c1"),
    RegistrationClosed("fest", T0, T0 + timedelta(days=7)),
    NotDrawn("fest", "c1"),
    NotAdmitted("fest", "CN", "the admission expired"),
    ProofOfWork("fest", 16, "the solution does not solve the challenge"),
]


def test_every_refusal_class_has_an_example_here() -> None:
    assert {type(e) for e in REFUSAL_EXAMPLES} == set(REFUSALS.values())


@pytest.mark.parametrize("refusal", REFUSAL_EXAMPLES, ids=lambda e: type(e).__name__)
def test_a_refusal_carries_a_reason_data_and_a_message(refusal: LampoError) -> None:
    assert REFUSALS[refusal.reason] is type(refusal)
    detail = refusal.detail()
    assert detail, "a refusal must carry data"
    assert all(isinstance(v, str | int | type(None)) for v in detail.values())
    assert str(refusal) != refusal.reason, "the message should say more than the reason"


@pytest.mark.parametrize("refusal", REFUSAL_EXAMPLES, ids=lambda e: type(e).__name__)
def test_a_refusal_rebuilds_from_its_reason_and_detail(refusal: LampoError) -> None:
    assert refusal_from_detail(refusal.reason, refusal.detail()) == refusal


def test_refusal_messages_name_their_data() -> None:
    assert str(SoldOut("phone-red", 2, 1)) == "phone-red: 2 requested, 1 available"
    assert "opens at 2015-04-08T02:00:00+00:00" in str(NotOpen("CN", T0))
    assert "of phone-red" in str(LimitExceeded("c1", 2, 2, "phone-red"))
    assert "in this event" in str(LimitExceeded("c1", 5, 4))
