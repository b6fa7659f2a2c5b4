"""What a :class:`geventio.ClientBuilder` collects: the :class:`Options` of one client."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from geventio._handshake import Handshake
from geventio._packet import Packet
from geventio._payload import MAX_PACKETS
from geventio._reason import CloseReason
from geventio._redact import redact, redact_headers
from geventio.exceptions import EngineIOError

__all__ = ["HeadersOption", "Message", "Options"]

#: A received message: ``str`` for text, ``bytes`` for binary.
Message = str | bytes
HeadersOption = Mapping[str, str] | Callable[[], Mapping[str, str]]


@dataclass
class Options:
    """Everything a builder collects; one :class:`Client` is made from it per ``build*``."""

    url: str
    path: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    headers: HeadersOption = field(default_factory=dict)
    tls_config: ssl.SSLContext | None = None
    timeout: float = 10.0
    max_message_size: int = 16 * 1024 * 1024
    inbox_size: int = 1024
    send_buffer: int = 1024 * 1024
    max_packets_per_post: int = MAX_PACKETS
    proxy: str | None = None
    proxy_from_env: bool = True
    no_proxy: str | None = None
    on_open: Callable[[Handshake], Any] | None = None
    on_data: Callable[[Message], Any] | None = None
    on_packet: Callable[[Packet], Any] | None = None
    on_error: Callable[[EngineIOError], Any] | None = None
    on_close: Callable[[CloseReason], Any] | None = None
    on_upgrade: Callable[[str], Any] | None = None

    def __repr__(self) -> str:
        """Every field, but credentials in the URLs and secret header values as ``***``."""
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in ("url", "proxy") and value is not None:
                value = redact(value)
            elif item.name == "headers" and not callable(value):
                value = redact_headers(value)
            shown.append(f"{item.name}={value!r}")
        return f"Options({', '.join(shown)})"
