"""Keys outside the events' slots in the Redis store: the hold index and payment ids.

Two keys lie outside the events' slots: the hold index (``<prefix>hx:<hold id>`` -> its
event, read by pay, release, refund and ``hold``) and the set of event ids (read only by
``events``/``load_events``). On one server the scripts write them in the same atomic
step. On a cluster they cannot, so the client writes them right after the script, and
again whenever an idempotent repeat returns the same hold or event: a caller is answered
only after the index is written, and a crash between the two leaves a hold that its
caller, retrying with the same key, finds again; one nobody retries for expires as usual
(expiry reads the event's own deadline index). Hold ids are unique per event.

Payment ids have keys outside the events' slots too (``<prefix>px:<payment id>``, a
hash: the hold it settled): a payment id settles at most one hold. On one server pay.lua
checks and writes it in the same atomic step as the payment. On a cluster the client
claims the id for its hold (claim.lua, in the key's own slot) before pay.lua, and lets
go of it if pay.lua refused; a claim for another hold that may still be paid with the id
makes the payment ``Unavailable`` (retry), one for a hold that cannot be is taken over.
See ``_pay_on_cluster`` and docs/storage-redis-postgres.md, "Payment ids on a cluster".
Orders paid before these keys existed get theirs when a store opens, once per prefix
(``<prefix>px-bound``).
"""

from __future__ import annotations

from lampo.domain.holds import HoldState
from lampo.storage.redis.client import _Req
from lampo.storage.redis.reads import Reads
from lampo.storage.redis.scripts import Call

#: Tries to claim a payment id on a cluster whose claim other clients keep taking over.
_CLAIM_TRIES = 4


class PaymentIds(Reads):
    """Payment ids' keys, claimed around payments on a cluster; hold ids on a cluster."""

    def _pay_on_cluster(self, reqs: list[_Req]) -> None:
        """Payments on a cluster, where a payment id's key lies in another slot than its
        hold: claim each payment id for its hold (claim.lua), run pay.lua where claimed,
        then let go of the claims pay.lua refused. A payment that succeeded needs no third
        step: its hold, paid with the id, refuses the id elsewhere from then on. The
        requests of one payment id for several holds go one hold at a time, so each
        learns how the one before ended. See docs/storage-redis-postgres.md, "Payment ids
        on a cluster"."""
        while reqs:
            hold_of: dict[str, str] = {}  # payment id -> the hold it is tried on now
            now: list[_Req] = []
            later: list[_Req] = []
            for req in reqs:
                same = hold_of.setdefault(req.payment_id, req.hold_id) == req.hold_id
                (now if same else later).append(req)
            refused = self._claim(hold_of)
            for req in now:
                req.answer = refused.get(req.payment_id)
            claimed = [req for req in now if req.answer is None]
            self._run_reqs(claimed)
            self._let_go(claimed)
            reqs = later

    def _claim(self, hold_of: dict[str, str]) -> dict[str, list[str]]:
        """Claim each payment id for its hold; the answers of those that cannot be:
        ``payment-id`` (it settled another hold), ``payment-busy`` (claimed for another
        hold that is still held and may be paid with it: an attempt under way, or one a
        crash cut)."""
        out: dict[str, list[str]] = {}
        # payment id -> (the hold its claim may be taken from, the most attempts for that
        # hold it may still count: '' any, as that hold can never be paid with the id)
        over: dict[str, tuple[str, str]] = {}
        todo = dict(hold_of)
        for _ in range(_CLAIM_TRIES):
            if not todo:
                break
            calls: list[Call] = [
                ("claim", [self._payment_key(pid)], ["claim", hold_id, *over.get(pid, ("", ""))])
                for pid, hold_id in todo.items()
            ]
            again: dict[str, str] = {}
            for (pid, hold_id), answer in zip(todo.items(), self._evalsha(calls), strict=True):
                if isinstance(answer, Exception):
                    raise answer
                match answer:
                    case ["ok"]:
                        pass
                    case ["bound"] if not self._paid_with(hold_id, pid):
                        out[pid] = ["payment-id"]
                    case ["bound"]:
                        pass  # an order from before the keys, paid with it too: "same"
                    case ["other", other, attempts]:
                        verdict = self._claimed_by(other, pid, int(attempts))
                        if isinstance(verdict, list):
                            out[pid] = verdict
                        else:  # claim it again, taking it over from that hold
                            over[pid] = (other, verdict)
                            again[pid] = hold_id
                    case _:
                        raise AssertionError(f"claim.lua answered {answer!r}")
            todo = again
        for pid in todo:  # claimed again by others each time: under way elsewhere
            out[pid] = ["payment-busy"]
        return out

    def _claimed_by(self, hold_id: str, payment_id: str, attempts: int) -> list[str] | str:
        """What a claim of ``payment_id`` for ``hold_id`` (``attempts`` for it not known
        to have been refused) means for a payment of another hold: the answer
        ``payment-id`` if that hold is paid with it (it settled it: the key says so from
        now on, ``bind``), ``payment-busy`` if it is held and an attempt may yet pay it.
        Otherwise the claim may be taken over, and the most attempts it may count then:
        '' (any) if that hold can never be paid with the id (it ended otherwise, was paid
        with another id, or is gone); '0' if it is held and every attempt was refused, so
        that one claiming it meanwhile keeps it."""
        other = self.hold(hold_id)
        if other is None:
            return ""
        if other.is_order and other.payment_id == payment_id:
            self._run("claim", [self._payment_key(payment_id)], ["bind", hold_id])
            return ["payment-id"]
        if other.state is not HoldState.HELD:
            return ""
        return ["payment-busy"] if attempts > 0 else "0"

    def _paid_with(self, hold_id: str, payment_id: str) -> bool:
        hold = self.hold(hold_id)
        return hold is not None and hold.is_order and hold.payment_id == payment_id

    def _let_go(self, claimed: list[_Req]) -> None:
        """Let go of each payment id whose requests pay.lua all refused (the claim counts
        one attempt fewer). One paid or found paid keeps its claim; one whose outcome is
        unknown (the script call failed) too, as if it might have paid."""
        refused: dict[str, list[bool]] = {}
        hold_of: dict[str, str] = {}
        for req in claimed:
            one = req.answer
            done = isinstance(one, list) and one[0] not in ("ok", "same")
            refused.setdefault(req.payment_id, []).append(done)
            hold_of[req.payment_id] = req.hold_id
        calls: list[Call] = [
            ("claim", [self._payment_key(pid)], ["refused", hold_of[pid]])
            for pid, all_refused in refused.items()
            if all(all_refused)
        ]
        for answer in self._evalsha(calls) if calls else []:
            if isinstance(answer, Exception):
                raise answer

    def _bind_paid_orders(self) -> None:
        """Give every order's payment id its key, once per store prefix (the key
        ``px-bound`` says it was done): orders paid by a lampo from before payment ids
        had keys have none. An id that paid several keeps the first paid."""
        done = self.prefix + "px-bound"
        if self._r.exists(done):
            return
        orders = [
            hold
            for event in sorted(self._r.smembers(self._events))
            for hold in self.holds(event)
            if hold.is_order
        ]
        orders.sort(key=lambda h: (h.paid_at or h.created_at, h.id))
        calls: list[Call] = [
            ("claim", [self._payment_key(h.payment_id)], ["bind", h.id]) for h in orders
        ]
        for start in range(0, len(calls), 1000):
            for answer in self._evalsha(calls[start : start + 1000]):
                if isinstance(answer, Exception):
                    raise answer
        self._r.set(done, "1")

    def _check_hold_ids(self, reqs: list[_Req]) -> None:
        """On a cluster: refuse a bucketed reservation whose hold id the index gives to
        another bucket or event (on one server reserve.lua checks it atomically)."""
        values = self._r.mget_nonatomic([self._index(req.hold_id) for req in reqs])
        mine: dict[str, str] = {}
        for req, value in zip(reqs, values, strict=True):
            first = mine.setdefault(req.hold_id, req.tag)
            if (value is not None and value != req.tag) or first != req.tag:
                req.answer = ["hold-id"]
