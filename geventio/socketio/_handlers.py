"""Event handlers: registration (``on``, ``event``, class namespaces) and finding the one to call.

The rules are python-socketio's, so that handlers written for it run unchanged:

1. ``handlers[namespace][event]``;
2. ``handlers[namespace]['*']``, called as ``handler(event, *args)``;
3. only when the namespace has no handler at all: ``handlers['*'][event]``, called as
   ``handler(namespace, *args)``;
4. ``handlers['*']['*']``, called as ``handler(event, namespace, *args)``;
5. else the :class:`ClientNamespace` registered for the namespace (or for ``'*'``, then called
   with the namespace first), which calls its ``on_<event>`` method.

Catch-alls never receive the reserved events (``connect``, ``connect_error``, ``disconnect``).
A ``disconnect`` handler gets the reason only when it takes an argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from geventio.socketio._client import Client

__all__ = ["ClientNamespace", "Handlers"]

RESERVED = frozenset({"connect", "connect_error", "disconnect"})
F = TypeVar("F", bound=Callable[..., Any])


def takes_argument(handler: Callable[..., Any]) -> bool:
    """``True`` when ``handler`` can be called with one positional argument."""
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: assume it does
        return True
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind is inspect.Parameter.VAR_POSITIONAL or p.kind in kinds for p in parameters)


class ClientNamespace:
    """Handlers of one namespace as methods ``on_<event>``; register with
    :meth:`Client.register_namespace`.

    ``emit``, ``send`` and ``call`` default to this namespace; the rest is the client's.

    :param namespace: the namespace, ``'/'`` by default.
    """

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace or "/"
        self.client: Client | None = None

    def _set_client(self, client: Client) -> None:
        self.client = client

    def is_asyncio_based(self) -> bool:
        return False

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Call ``on_<event>(*args)`` if the class has it, and return what it returns.

        Override it to route events another way. A ``on_disconnect`` that takes no argument is
        called without the reason.
        """
        handler = getattr(self, "on_" + (event or ""), None)
        if handler is None:
            return None
        if event == "disconnect" and args and not takes_argument(handler):
            args = args[:-1]
        return handler(*args)

    def _client(self) -> Client:
        if self.client is None:
            raise RuntimeError("this namespace is not registered with a client")
        return self.client

    def emit(
        self,
        event: str,
        data: Any = None,
        namespace: str | None = None,
        callback: Callable[..., Any] | None = None,
    ) -> None:
        """:meth:`Client.emit` in this namespace unless told otherwise."""
        self._client().emit(event, data, namespace or self.namespace, callback)

    def send(
        self,
        data: Any,
        room: str | None = None,
        namespace: str | None = None,
        callback: Callable[..., Any] | None = None,
    ) -> None:
        """:meth:`Client.send` in this namespace unless told otherwise (``room`` is ignored)."""
        self._client().send(data, namespace or self.namespace, callback)

    def call(
        self,
        event: str,
        data: Any = None,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """:meth:`Client.call` in this namespace unless told otherwise."""
        return self._client().call(
            event, data, namespace or self.namespace, 60 if timeout is None else timeout
        )

    def disconnect(self) -> None:
        """:meth:`Client.disconnect`: the whole client, as in python-socketio."""
        self._client().disconnect()


class Handlers:
    """The handlers of one client, and the lookup of the one an event goes to."""

    def __init__(self) -> None:
        self.handlers: dict[str, dict[str, Callable[..., Any]]] = {}
        self.namespace_handlers: dict[str, ClientNamespace] = {}

    def set(self, event: str, handler: Callable[..., Any], namespace: str | None) -> None:
        self.handlers.setdefault(namespace or "/", {})[event] = handler

    def register(self, namespace_handler: ClientNamespace, client: Client) -> None:
        if not isinstance(namespace_handler, ClientNamespace):
            raise ValueError("Not a namespace instance")
        namespace_handler._set_client(client)
        self.namespace_handlers[namespace_handler.namespace] = namespace_handler

    def default_namespaces(self) -> list[str]:
        """The namespaces ``connect(namespaces=None)`` joins: those with handlers, else ``'/'``."""
        names = [ns for ns in (*self.handlers, *self.namespace_handlers) if ns != "*"]
        return list(dict.fromkeys(names)) or ["/"]

    def has(self, event: str, namespace: str) -> bool:
        """Whether some handler would receive ``event`` in ``namespace``."""
        return self.find(event, namespace, ())[0] is not None

    def find(
        self, event: str, namespace: str, args: tuple[Any, ...]
    ) -> tuple[Callable[..., Any] | None, tuple[Any, ...]]:
        """The handler for ``event`` and the arguments to call it with (see the module doc)."""
        for ns, extra in ((namespace, ()), ("*", (namespace,))):
            table = self.handlers.get(ns)
            if table is None:
                continue
            handler = table.get(event)
            if handler is not None:
                return handler, (*extra, *args)
            if event not in RESERVED and "*" in table:
                return table["*"], (event, *extra, *args)
            break  # as python-socketio: a namespace with handlers of its own stops the search
        space = self.namespace_handlers.get(namespace)
        if space is not None:
            return space.trigger_event, (event, *args)
        space = self.namespace_handlers.get("*")
        if space is not None:
            return space.trigger_event, (event, namespace, *args)
        return None, args

    def call(self, event: str, namespace: str, *args: Any) -> Any:
        """Run the handler of ``event``, if any; return its result (the ack's data)."""
        handler, call_args = self.find(event, namespace, args)
        if handler is None:
            return None
        if (
            event == "disconnect"
            and args
            and not _is_namespace_trigger(handler)
            and not takes_argument(handler)
        ):
            call_args = call_args[: len(call_args) - 1]
        return handler(*call_args)


def _is_namespace_trigger(handler: Callable[..., Any]) -> bool:
    return isinstance(getattr(handler, "__self__", None), ClientNamespace)
