"""At interpreter exit, give :mod:`logging` back the interpreter's own module lock.

Why: Locust's ``gevent.monkey.patch_all()`` replaces ``logging._lock`` with a pure-Python
``threading.RLock`` whose owner is ``gevent.thread.get_ident()``, that is the current greenlet.
Logging handlers held only by a module global (Flask's ``default_handler`` and
charset_normalizer's ``explain_handler``, both imported by Locust; or a script's own) are freed
while the interpreter tears its modules down, and each one's weakref callback
(``logging._removeHandlerRef``) takes that lock. By then ``greenlet.getcurrent()`` raises
``RuntimeError: greenlet is being finalized`` (greenlet 3.5.1 and later). gevent 26's
``get_ident`` catches it; gevent 25's does not, and gevent 25 is what Locust allows on Python
3.10 (Locust 2.46, the last release for 3.10, requires ``gevent<26``). Python then prints
``Exception ignored in: <function _removeHandlerRef ...>`` and a traceback for each such handler,
at the end of every script that imported Locust.

The fix: an ``atexit`` callback, which runs while greenlets still work and before any module is
torn down, puts a native ``RLock`` in its place. Logging holds that lock only around a few
dictionary and list updates that never yield, so greenlets of one thread need no exclusion from
one another there; the native lock, owned by the thread, works to the very end.
"""

from __future__ import annotations

import atexit
import logging

from gevent import monkey


def restore_logging_lock() -> None:
    """Put a native ``RLock`` back as ``logging``'s module lock, if gevent patched it.

    Does nothing when gevent did not patch it, or while a greenlet other than the caller holds
    it (that greenlet will release the lock it took). Blocks on nothing; raises nothing.
    """
    if not monkey.is_object_patched("logging", "_lock"):
        return
    patched = logging._lock  # type: ignore[attr-defined]
    if not patched.acquire(blocking=False):
        return
    try:
        logging._lock = monkey.get_original("_thread", "RLock")()  # type: ignore[attr-defined]
    finally:
        patched.release()


def restore_logging_lock_at_exit() -> None:
    """Run :func:`restore_logging_lock` when the interpreter exits (once per process).

    Blocks on nothing; raises nothing.
    """
    atexit.unregister(restore_logging_lock)
    atexit.register(restore_logging_lock)
