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
from typing import Any, Protocol, TypeVar, overload

__all__ = ["ClientNamespace", "HandlerRegistry", "Handlers"]

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


class NamespaceClient(Protocol):
    """What a :class:`ClientNamespace` calls on its client (:class:`~geventio.socketio.Client`):
    named here so that this module needs no import of the client's."""

    def emit(
        self,
        event: str,
        data: Any = None,
        namespace: str | None = None,
        callback: Callable[..., Any] | None = None,
    ) -> None: ...

    def send(
        self, data: Any, namespace: str | None = None, callback: Callable[..., Any] | None = None
    ) -> None: ...

    def call(
        self, event: str, data: Any = None, namespace: str | None = None, timeout: float = 60
    ) -> Any: ...

    def disconnect(self) -> None: ...


class ClientNamespace:
    """Handlers of one namespace as methods ``on_<event>``; register with
    :meth:`Client.register_namespace`.

    ``emit``, ``send`` and ``call`` default to this namespace; the rest is the client's.

    :param namespace: the namespace, ``'/'`` by default.
    """

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace or "/"
        #: The :class:`~geventio.socketio.Client` this namespace is registered with (``Any`` as in
        #: python-socketio: any of its methods may be called).
        self.client: Any = None

    def _set_client(self, client: Any) -> None:
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

    def _client(self) -> NamespaceClient:
        if self.client is None:
            raise RuntimeError("this namespace is not registered with a client")
        client: NamespaceClient = self.client
        return client

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

    def register(self, namespace_handler: ClientNamespace, client: Any) -> None:
        if not isinstance(namespace_handler, ClientNamespace):
            raise ValueError("Not a namespace instance")
        namespace_handler._set_client(client)
        self.namespace_handlers[namespace_handler.namespace] = namespace_handler

    def default_namespaces(self) -> list[str]:
        """The namespaces ``connect(namespaces=None)`` joins: those with handlers, else ``'/'``."""
        names = [ns for ns in (*self.handlers, *self.namespace_handlers) if ns != "*"]
        return list(dict.fromkeys(names)) or ["/"]

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


class HandlerRegistry:
    """python-socketio's registration API (``on``, ``event``, ``register_namespace``), over a
    :class:`Handlers` table; :class:`~geventio.socketio.Client` has it."""

    def __init__(self) -> None:
        self._handlers = Handlers()
        self.handlers = self._handlers.handlers
        self.namespace_handlers = self._handlers.namespace_handlers

    @overload
    def on(
        self, event: str, handler: None = None, namespace: str | None = None
    ) -> Callable[[F], F]: ...

    @overload
    def on(self, event: str, handler: F, namespace: str | None = None) -> None: ...

    def on(
        self, event: str, handler: Callable[..., Any] | None = None, namespace: str | None = None
    ) -> Any:
        """Register ``handler`` for ``event`` in ``namespace`` (``'*'``: every event or
        namespace without a handler of its own); without ``handler``, a decorator."""
        if handler is None:

            def set_handler(fn: Callable[..., Any]) -> Callable[..., Any]:
                self._handlers.set(event, fn, namespace)
                return fn

            return set_handler
        self._handlers.set(event, handler, namespace)
        return None

    @overload
    def event(self, handler: F, /) -> F: ...

    @overload
    def event(self, *, namespace: str | None = None) -> Callable[[F], F]: ...

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """Decorator: the function's name is the event (``@sio.event`` or
        ``@sio.event(namespace='/chat')``)."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            return self.on(args[0].__name__)(args[0])

        def set_handler(fn: Callable[..., Any]) -> Callable[..., Any]:
            return self.on(fn.__name__, *args, **kwargs)(fn)  # type: ignore[no-any-return]

        return set_handler

    def register_namespace(self, namespace_handler: ClientNamespace) -> None:
        """Route a namespace's events to a :class:`ClientNamespace` instance.

        :raises ValueError: for anything else.
        """
        self._handlers.register(namespace_handler, self)
