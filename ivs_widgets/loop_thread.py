"""An asyncio event loop on a daemon thread: the one way the kit runs async work beside its caller.

A notebook kernel runs its own loop only between cells, so anything that must keep going while a
cell runs (the sandbox, a chat connection, the audience simulator, the test stream's HTTP server)
gets a loop of its own on a background thread. Other threads hand it coroutines with
:meth:`LoopThread.submit` (a future) or :meth:`LoopThread.run` (block with a timeout).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """``LoopThread("name").start()``; ``stop()`` cancels what is still running and closes the loop."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.loop is not None \
            and not self.loop.is_closed()

    def in_thread(self) -> bool:
        """True when called from the loop's own thread (where blocking on it would deadlock)."""
        return self._thread is not None and threading.current_thread() is self._thread

    def start(self) -> LoopThread:
        """Start the loop (once); returns when it is running."""
        if self.running:
            return self
        loop = self.loop = asyncio.new_event_loop()
        started = threading.Event()
        loop.call_soon(started.set)
        self._thread = threading.Thread(target=self._run, args=(loop,), name=self.name, daemon=True)
        self._thread.start()
        started.wait()
        return self

    def submit(self, coroutine: Coroutine[Any, Any, T], *, detached: bool = False) -> concurrent.futures.Future[T]:
        """Schedule ``coroutine`` on the loop from any thread.

        ``detached`` runs it in a fresh context instead of a copy of the caller's: for work that
        outlives the call, such as a server. (In a kernel the caller's context names the cell that
        is running, and output of everything the server does later would be sent to that cell.)
        """
        if not self.running:
            coroutine.close()
            raise RuntimeError(f"the {self.name} loop is not running")
        assert self.loop is not None
        if detached:
            return contextvars.Context().run(asyncio.run_coroutine_threadsafe, coroutine, self.loop)
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run ``coroutine`` on the loop and block until it finishes; on timeout it is cancelled."""
        if self.in_thread():
            coroutine.close()
            raise RuntimeError(f"a blocking call from the {self.name} loop's own thread would deadlock; "
                               "schedule the coroutine on that loop instead")
        future = self.submit(coroutine)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def call_soon(self, callback: Callable[..., object], *args: object) -> None:
        """Run ``callback(*args)`` on the loop soon; nothing happens once the loop has stopped."""
        if self.running:
            assert self.loop is not None
            try:
                self.loop.call_soon_threadsafe(callback, *args)
            except RuntimeError:  # closed between the check and the call
                pass

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop, cancel its remaining tasks and close it; safe to call twice, from any thread."""
        if not self.running:
            return
        assert self.loop is not None and self._thread is not None
        self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.in_thread():
            self._thread.join(timeout)

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
