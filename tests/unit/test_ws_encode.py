"""Client frames built by ``encode_frames``: what a wsproto server makes of them, that they are
wsproto's own frames byte for byte when both draw the same masking keys, and where the keys come
from (``mask_keys``: a pool of ``os.urandom`` bytes, each key used once, new in a forked child)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, TextMessage
from wsproto.frame_protocol import FrameProtocol, Opcode

from geventio._transports._frames import KEY_POOL, KeyPool, encode_frames, mask, mask_keys

SIZES = [0, 1, 125, 126, 127, 1023, 1024, 65535, 65536, 70000]
sized = st.sampled_from(SIZES)
texts = st.one_of(
    st.text(max_size=30),
    st.builds(lambda n, c: (c * n)[:n], sized, st.sampled_from(["a", "é", "日", "🎉"])),
)
blobs = st.one_of(
    st.binary(max_size=30), st.builds(lambda n: bytes(i % 251 for i in range(n)), sized)
)


def server_decode(data: bytes) -> list[str | bytes]:
    proto = FrameProtocol(client=False, extensions=[])  # a server: it requires masked frames
    proto.receive_bytes(data)
    out: list[str | bytes] = []
    for frame in proto.received_frames():
        assert frame.frame_finished
        assert frame.message_finished
        assert frame.opcode in (Opcode.TEXT, Opcode.BINARY)
        assert isinstance(frame.payload, str | bytes)
        out.append(frame.payload)
    return out


messages = st.lists(st.one_of(texts, blobs), max_size=6)


@settings(max_examples=150, deadline=None)
@given(messages)
def test_a_wsproto_server_decodes_our_frames_to_the_messages_sent(batch: list[str | bytes]) -> None:
    decoded = server_decode(encode_frames(batch))
    assert decoded == batch
    assert [type(m) for m in decoded] == [type(m) for m in batch]


@settings(max_examples=100, deadline=None)
@given(messages, st.randoms(use_true_random=False))
def test_our_frames_are_byte_for_byte_wsproto_s_with_the_same_keys(
    batch: list[str | bytes], rng: random.Random
) -> None:
    """Same keys (a seeded source for both): our encoding is wsproto's, byte for byte."""
    seed = rng.getrandbits(32)

    def keys() -> Callable[[int], bytes]:
        source = random.Random(seed)
        return lambda n: bytes(source.getrandbits(8) for _ in range(n))

    ours = encode_frames(batch, keys())
    with mock.patch.object(os, "urandom", keys()):
        ws = Connection(ConnectionType.CLIENT)
        theirs = b"".join(
            ws.send(TextMessage(m) if isinstance(m, str) else BytesMessage(m)) for m in batch
        )
    assert ours == theirs


def test_each_frame_has_its_own_key() -> None:
    frames = encode_frames(["same"] * 50)
    keys = {frames[i * 10 + 2 : i * 10 + 6] for i in range(50)}  # header 2, key 4, payload 4
    assert len(keys) == 50
    assert server_decode(frames) == ["same"] * 50


def test_mask_is_its_own_inverse() -> None:
    key = b"\x01\x02\x03\x04"
    for size in (0, 1, 3, 4, 5, 1000):
        payload = bytes(range(256)) * 4
        assert mask(key, mask(key, payload[:size])) == payload[:size]
    assert mask(key, b"\x00" * 6) == b"\x01\x02\x03\x04\x01\x02"


def test_lone_frames_take_their_keys_from_the_pool_each_once() -> None:
    """One ``os.urandom`` call per KEY_POOL bytes of keys; every key is the next 4 of them."""
    stream = bytes(random.Random(7).getrandbits(8) for _ in range(3 * KEY_POOL))
    calls: list[int] = []

    def source(size: int) -> bytes:
        start = sum(calls)
        calls.append(size)
        return stream[start : start + size]

    pool = KeyPool(source)
    frames = [encode_frames(["3"], pool.take) for _ in range(KEY_POOL // 2)]  # two pools' worth
    assert calls == [KEY_POOL, KEY_POOL]
    assert b"".join(f[2:6] for f in frames) == stream[: 2 * KEY_POOL]
    assert server_decode(b"".join(frames)) == ["3"] * (KEY_POOL // 2)


def test_a_batch_draws_its_keys_at_once() -> None:
    calls: list[int] = []

    def source(size: int) -> bytes:
        calls.append(size)
        return os.urandom(size)

    frames = encode_frames(["a", "b", "c"], KeyPool(source).take)
    assert calls == [12]
    assert server_decode(frames) == ["a", "b", "c"]


def test_a_forked_child_does_not_reuse_the_parent_s_keys() -> None:
    """Without the reset at fork, the child would take the very key the parent takes next."""
    mask_keys(4)  # the pool is full now, in the parent and in the child to be
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, mask_keys(4))
        finally:
            os._exit(0)
    os.close(write)
    try:
        child = os.read(read, 4)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    ours = mask_keys(4)
    assert len(child) == 4
    assert child != ours
