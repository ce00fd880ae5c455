"""Hostile requests over a real socket to ``lampo serve`` (granian), raw bytes included.

What never reaches the app is granian's (hyper's) to answer: a request line or header it
cannot parse (a raw byte 0xFF in the path, a control byte in a header, a Content-Length
that is not a number) gets a status line alone, ``400 Bad Request`` (``414`` for a
target too long, ``431`` for headers too large), no body, and the connection is closed.
Granian has no hook to answer those itself (see docs/http-api.md, "Errors"). The
properties: such a request gets exactly that, every other request gets what the app
promises (``_asgi.problems_in``), a refusal changes nothing in storage, and the server
keeps serving.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lampo.storage import Storage, from_url
from lampo.web.auth import issue_token
from tests.e2e._http import ADMIN_KEY, SECRET, WEBHOOK_SECRET, Server, live_event, running_server
from tests.hostile import strategies as hs
from tests.hostile._asgi import problems_in, state
from tests.hostile._requests import Api, Call, calls

pytestmark = pytest.mark.sqlite

#: What hyper answers, by itself, to a request it cannot parse.
PARSE_REFUSALS = (400, 414, 431)


@dataclass
class Raw:
    status: int | None  # None: the server closed the connection without an answer
    headers: dict[bytes, bytes]
    body: bytes


def exchange(port: int, data: bytes) -> Raw:
    """Send ``data`` (a request that asks for ``connection: close``, or one the server
    must refuse), read the answer until the server closes. Our side stays open: hyper
    answers nothing to a client that half-closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        try:
            conn.sendall(data)
        except OSError:
            pass  # the server answered (and closed) before it had everything
        received = bytearray()
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass  # it closed with unread bytes of ours: what it sent before that counts
    if not received:
        return Raw(None, {}, b"")
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return Raw(int(status_line.split()[1]), headers, body)


@dataclass
class Live:
    server: Server
    storage: Storage
    api: Api

    def healthy(self) -> bool:
        health = b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        return exchange(self.server.port, health).status == 200


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    # no expiry sweeper: holds change only by the requests the test sends (the test clock
    # may be moved past their expiry), so a refusal can be seen to change nothing
    tmp = tmp_path_factory.mktemp("hostile-serve")
    with running_server(tmp, LAMPO_SWEEP_INTERVAL="0") as server:
        event = live_event("hostile", {"phone-red": 1000, "phone-black": 1000, "tv-55": 1000})
        server.load(event)
        held = server.reserve("alice", event.id, {"phone-red": 1}).json
        paid = server.reserve("alice", event.id, {"phone-black": 1}).json
        assert server.pay("alice", paid["id"]).status == 200
        amounts = {h["id"]: (h["amount"]["amount"], h["amount"]["currency"]) for h in (held, paid)}
        api = Api(
            SECRET.encode(),
            ADMIN_KEY.encode(),
            WEBHOOK_SECRET.encode(),
            event,
            "alice",
            held["id"],
            paid["id"],
            amounts,
        )
        storage = from_url(f"sqlite:///{server.db}")  # a reader beside the server
        try:
            yield Live(server, storage, api)
        finally:
            storage.close()


# -- requests granian cannot parse --------------------------------------------------------------


def _request(line: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    return line + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n" + body


@st.composite
def malformed(draw: st.DrawFn, token: str) -> bytes:
    """A request with one part that HTTP/1.1 does not allow: a byte in the target that
    must be escaped, a control byte in a header value, a header name that is not a
    token, a Content-Length that is not a number or two that disagree, a bad version or
    request line, a header section past granian's buffer."""
    kind = draw(
        st.sampled_from(("target", "value", "name", "length", "lengths", "version", "line", "huge"))
    )
    target = b"/v1/holds"
    version = b"HTTP/1.1"
    headers = [
        (b"host", b"lampo"),
        (b"connection", b"close"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"idempotency-key", b"malformed"),
        (b"content-type", b"application/json"),
    ]
    body = b'{"event": "hostile", "market": "CN", "items": {"tv-55": 1}}'
    length = str(len(body)).encode()
    if kind == "target":
        bad = draw(st.sampled_from((b"\xff", b"\x00", b"\x7f", b"\x1b", b" x", b'"', b"<")))
        target = b"/v1/holds/" + bad + draw(st.binary(max_size=10)).replace(b"\r\n", b"")
    elif kind == "value":
        control = draw(st.sampled_from([bytes([c]) for c in (*range(0, 9), *range(10, 32), 127)]))
        name = draw(st.sampled_from((b"idempotency-key", b"authorization", b"x-anything")))
        headers.append((name, b"a" + control.replace(b"\r", b"\x00").replace(b"\n", b"\x00")))
    elif kind == "name":
        name = draw(st.sampled_from((b"bad name", b"bad\xffname", b"(x)", b"a\x00b", b"")))
        headers.append((name, b"x"))
    elif kind == "length":
        text = draw(hs.hostile_number_text(max_digits=60).filter(lambda t: not t.isdigit()))
        length = text.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")
        if not length.strip():
            length = b"12abc"
    elif kind == "lengths":
        headers.append((b"content-length", str(len(body) + draw(st.integers(1, 9))).encode()))
    elif kind == "version":
        version = draw(st.sampled_from((b"HTTP/1.x", b"HTTP/9.9", b"HTTP/1", b"FTP/1.1", b"")))
    elif kind == "line":
        line = draw(st.binary(min_size=1, max_size=60).filter(lambda b: b"\r\n" not in b))
        return line + b"\r\n\r\n"
    elif kind == "huge":
        headers.append((b"x-filler", b"a" * draw(st.integers(600_000, 700_000))))
    headers.append((b"content-length", length))
    return _request(b"POST " + target + b" " + version, headers, body)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_a_request_granian_cannot_parse_gets_a_bare_400_and_the_server_stays_up(
    live: Live, data: st.DataObject
) -> None:
    request = data.draw(malformed(issue_token(SECRET.encode(), "mallory")))
    before = state(live.storage)
    answer = exchange(live.server.port, request)
    if answer.status is not None and answer.status in PARSE_REFUSALS and not answer.body:
        assert b"content-type" not in answer.headers
    else:
        # granian found nothing wrong with it (a byte some parsers refuse, say): then the
        # app answered, by its own rules
        assert answer.status is not None, request[:200]
        content_type = answer.headers.get(b"content-type", b"")
        call = Call("POST", "/v1/holds", (), b"", "malformed")
        assert not problems_in(call, answer.status, content_type, answer.body), request[:300]
    if answer.status is None or answer.status >= 400:
        assert state(live.storage) == before
    assert live.healthy()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /v1/events/\xffx HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        b"POST /v1/admin/expire HTTP/1.1\r\nhost: x\r\ncontent-length: 12abc\r\n\r\n",
        b"GET /health HTTP/1.1\r\nhost: x\r\nx-api-key: a\x01b\r\nconnection: close\r\n\r\n",
    ],
    ids=["0xff-in-path", "content-length-12abc", "control-byte-in-header"],
)
def test_the_issues_examples_get_granians_bare_400(live: Live, request_bytes: bytes) -> None:
    answer = exchange(live.server.port, request_bytes)
    assert (answer.status, answer.body) == (400, b"")
    assert live.healthy()


# -- requests the app answers, over the wire ---------------------------------------------------


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_route_over_a_socket_answers_a_success_or_a_clean_refusal(
    live: Live, data: st.DataObject
) -> None:
    call = data.draw(calls(live.api))
    before = state(live.storage)
    answer = exchange(live.server.port, call.wire())
    assert answer.status is not None, call
    content_type = answer.headers.get(b"content-type", b"")
    if answer.status in PARSE_REFUSALS and not answer.body and not content_type:
        pass  # granian refused it (a hostile header value it does not pass on)
    else:
        wrong = problems_in(call, answer.status, content_type, answer.body)
        assert not wrong, (call, wrong)
    if answer.status >= 400:
        assert state(live.storage) == before, call
    assert live.healthy()
