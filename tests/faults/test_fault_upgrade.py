"""A failing upgrade probe, on both real servers behind the fault proxy.

The probe is answered wrongly (``3nope``, a ``4message``), never answered, refused (400, 503), or
hung up on.  ``build()`` then stays on polling, ``build_websocket_with_upgrade()`` raises
``ConnectError``, the client closes the probe socket itself, and no message sent meanwhile is
lost or duplicated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import pytest

import geventio
from geventio import CloseReason, ConnectError
from tests.faultkit import Bound
from tests.faults.faultproxy import FaultProxy, Record
from tests.helpers import spawn_catching, wait_until
from tests.servers import ServerHandle

# failure name -> FaultProxy options
FAILURES: dict[str, dict[str, Any]] = {
    "wrong-3nope": {"probe": "wrong", "wrong_answer": "3nope"},
    "wrong-message": {"probe": "wrong", "wrong_answer": "4message"},
    "silent": {"probe": "silent"},
    "refuse-400": {"probe": "refuse", "refuse_status": 400},
    "refuse-503": {"probe": "refuse", "refuse_status": 503},
    "hangup": {"probe": "hangup"},
}
TIMEOUT = 1.0  # the builder's timeout: a silent probe fails after it
# The silent probe waits TIMEOUT for its answer, then its socket is aborted at once.
BUILD_BOUND = {"silent": TIMEOUT + 0.5}
FAST_BOUND = 1.0
# From the proxy's (mis)answer to the client closing the probe socket.
CLOSE_BOUND = {"silent": TIMEOUT + 0.5}
FAST_CLOSE_BOUND = 0.5


@pytest.fixture(params=list(FAILURES))
def failure(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def proxy(server: ServerHandle, failure: str) -> Iterator[FaultProxy]:
    with FaultProxy(server.port, **FAILURES[failure]) as running:
        yield running


def _bound(failure: str) -> float:
    return BUILD_BOUND.get(failure, FAST_BOUND)


def _check_probe_closed_by_client(proxy: FaultProxy, failure: str) -> None:
    """The probe went through the proxy's failure, then the client closed its socket."""
    wait_until(lambda: all(r.closed_by is not None for r in proxy.probes), 3.0)
    [probe] = proxy.probes
    assert probe.probe == FAILURES[failure]["probe"]
    if failure == "hangup":
        assert probe.closed_by == "proxy"
        return
    assert probe.closed_by == "client", probe
    assert probe.answered_at is not None
    assert probe.closed_at is not None
    # the client closes right after the failure (a silent peer: right after the timeout)
    assert probe.closed_at - probe.answered_at <= CLOSE_BOUND.get(failure, FAST_CLOSE_BOUND)


def _probe_record(proxy: FaultProxy) -> Record:
    return proxy.probes[0]


def test_fault_build_stays_on_polling(proxy: FaultProxy, failure: str, bound: Bound) -> None:
    """A failed upgrade probe: build() stays on polling, closes the probe, the session works."""
    closes: list[CloseReason] = []
    upgrades: list[str] = []
    builder = (
        geventio.ClientBuilder(proxy.url)
        .timeout(TIMEOUT)
        .on_close(closes.append)
        .on_upgrade(upgrades.append)
    )
    with bound(_bound(failure)):
        client = builder.build()
    with client:
        assert client.transport == "polling"
        assert client.connected
        _check_probe_closed_by_client(proxy, failure)
        client.send("cmd:transport")
        client.send("still here")
        assert [client.receive(5), client.receive(5)] == ["polling", "still here"]
    assert upgrades == []
    wait_until(lambda: bool(closes))
    assert closes == [CloseReason.CLIENT_DISCONNECT]


def test_fault_build_websocket_with_upgrade_raises(
    proxy: FaultProxy, failure: str, bound: Bound
) -> None:
    """A failed upgrade probe: build_websocket_with_upgrade() raises ConnectError."""
    events: list[object] = []
    builder = (
        geventio.ClientBuilder(proxy.url)
        .timeout(TIMEOUT)
        .on_open(lambda handshake: events.append("open"))
        .on_close(events.append)
    )
    with bound(_bound(failure)), pytest.raises(ConnectError) as info:
        builder.build_websocket_with_upgrade()
    if failure.startswith("refuse"):
        status = FAILURES[failure]["refuse_status"]
        assert info.value.status == status
        assert info.value.body == f"probe refused ({status})"
    else:
        assert info.value.status is None
    if failure == "silent":
        assert isinstance(info.value, geventio.ConnectTimeout)
    _check_probe_closed_by_client(proxy, failure)
    # the session had opened: it is closed as by disconnect(), once
    wait_until(lambda: len(events) >= 2)
    assert events == ["open", CloseReason.CLIENT_DISCONNECT]


SENDERS, PER_SENDER = 4, 60
ANSWER_DELAY = 0.2


def test_fault_no_message_lost_or_duplicated_during_a_failed_upgrade(
    server: ServerHandle, failure: str, bound: Bound
) -> None:
    """Senders during a failed upgrade(): ConnectError; each message echoed once, in order."""
    # the proxy misbehaves only after ANSWER_DELAY, so the senders run while the probe waits
    options = {**FAILURES[failure], "answer_delay": ANSWER_DELAY}
    with FaultProxy(server.port, **options) as proxy:
        _senders_during_a_failed_upgrade(proxy, failure, bound)


def _senders_during_a_failed_upgrade(proxy: FaultProxy, failure: str, bound: Bound) -> None:
    client = geventio.ClientBuilder(proxy.url).timeout(TIMEOUT).build_polling()
    with client:
        sent = 0
        under_way = gevent.event.Event()

        def sender(k: int) -> None:
            nonlocal sent
            for i in range(PER_SENDER):
                client.send(f"s{k}-{i}")
                sent += 1
                if sent >= SENDERS:
                    under_way.set()
                gevent.sleep(0.005)  # 60 messages over ~0.3 s: through the whole failed upgrade

        senders = [gevent.spawn(sender, k) for k in range(SENDERS)]
        try:
            assert under_way.wait(5), "every sender has sent its first message"
            before = sent
            with bound(_bound(failure) + ANSWER_DELAY), pytest.raises(ConnectError):
                client.upgrade()
            assert sent - before >= SENDERS * 10  # they were sending during the failed upgrade
            gevent.joinall(senders, timeout=10, raise_error=True)
        finally:
            gevent.killall(senders)
        assert client.transport == "polling"
        assert client.connected
        total = SENDERS * PER_SENDER
        received = [client.receive(10) for _ in range(total)]
        for k in range(SENDERS):
            mine = [m for m in received if isinstance(m, str) and m.startswith(f"s{k}-")]
            assert mine == [f"s{k}-{i}" for i in range(PER_SENDER)]
        client.send("cmd:count")
        assert client.receive(5) == str(total)  # a duplicate would be counted, or come first
    _check_probe_closed_by_client(proxy, failure)


@pytest.mark.parametrize("where", ["connecting", "waiting"])
def test_fault_disconnect_during_an_upgrade(server: ServerHandle, where: str, bound: Bound) -> None:
    """disconnect() during an upgrade: upgrade() raises ConnectError, CLIENT_DISCONNECT at once."""
    # "connecting": the probe is opening its WebSocket; "waiting": for a silent probe's answer
    with FaultProxy(server.port, probe="pass" if where == "connecting" else "silent") as proxy:
        client = geventio.ClientBuilder(proxy.url).build_polling()  # default timeout: 10 s
        task = spawn_catching(client.upgrade)
        if where == "connecting":
            gevent.sleep(0)  # no timed wait: upgrade() runs up to its first block, the dial
        else:
            wait_until(lambda: bool(proxy.probes) and proxy.probes[0].answered_at is not None)
        with bound(2.0):
            client.disconnect()
            task.join(3.0)
        assert task.ready(), "upgrade() still blocked after disconnect()"
        assert isinstance(task.value, ConnectError)
        assert client.close_reason is CloseReason.CLIENT_DISCONNECT
        if where == "waiting":
            wait_until(lambda: _probe_record(proxy).closed_by is not None)
            assert _probe_record(proxy).closed_by == "client"
