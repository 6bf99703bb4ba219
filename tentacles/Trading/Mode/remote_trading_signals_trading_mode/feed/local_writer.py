"""One thread that runs every local store's writes in the order they were asked for.

The follower's order map and its feed progress share it. Two things follow from one FIFO thread:
- the event loop never runs a write (or an fsync) itself;
- changes that need not be waited for (the end of a feed message) can stay in memory as "lazy"
  work: every job queued later first queues the lazy work ahead of itself, so a progress record
  that says a message is done is always written after that message's changes, and with no thread
  round trip of their own (each one costs as much CPU as a small bundle on a small VM).

Not for the hub: it has its own store thread.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
ErrorCallback = Callable[[BaseException], None]
_process_pid = os.getpid()  # kept current in forked children: no getpid() syscall per job


def _after_fork_in_child() -> None:
    global _process_pid
    _process_pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Any] | concurrent.futures.Future[Any] | None = None
    on_error: ErrorCallback | None = None

    def finish(self, result: Any, error: BaseException | None) -> None:
        if isinstance(self.future, concurrent.futures.Future):
            self.future.set_exception(error) if error is not None else self.future.set_result(result)
            return
        if self.loop is None or (error is None and self.future is None):
            return
        try:
            self.loop.call_soon_threadsafe(self._resolve, result, error)
        except RuntimeError:
            pass  # the loop is closed: nobody is left to tell

    def _resolve(self, result: Any, error: BaseException | None) -> None:
        if self.future is None:
            if error is not None and self.on_error is not None:
                self.on_error(error)
            return
        assert isinstance(self.future, asyncio.Future)
        if self.future.cancelled():
            if error is not None and self.on_error is not None:
                self.on_error(error)  # the waiter is gone, its owner still must learn of the failure
            return
        self.future.set_exception(error) if error is not None else self.future.set_result(result)


class LocalWriter:
    def __init__(self, name: str = "octobot-signals-writer") -> None:
        self.name = name
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()
        # (event loop, source): each source is called on its own loop only, before each job queued from it
        self._lazy: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []
        self._draining = False

    def add_lazy(self, source: Callable[[], None]) -> None:
        """`source()` queues (with `submit`) whatever it holds back; it runs before every later job queued
        from this event loop."""
        entry = (asyncio.get_running_loop(), source)
        if entry not in self._lazy:
            self._lazy.append(entry)

    def remove_lazy(self, source: Callable[[], None]) -> None:
        self._lazy = [entry for entry in self._lazy if entry[1] != source]

    def drain_lazy(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on an event loop: no lazy source can be touched from here
        if self._draining:
            return  # a lazy source submitting its own work
        self._draining = True
        try:
            for source_loop, source in list(self._lazy):
                if source_loop is loop:
                    source()
        finally:
            self._draining = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the writer thread after everything queued before it; await its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self.drain_lazy()
        self._put(_Job(fn, args, loop, future))
        return await future

    def submit(self, fn: Callable[..., Any], *args: Any, on_error: ErrorCallback) -> None:
        """Queue `fn(*args)` without waiting; a failure calls `on_error(err)` on this event loop."""
        self.drain_lazy()
        self._put(_Job(fn, args, asyncio.get_running_loop(), None, on_error))

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Blocking: run `fn(*args)` after everything queued before it (closing a store)."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        self.drain_lazy()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put(_Job(fn, args, None, future))
        return future.result()

    def _put(self, job: _Job) -> None:
        self._ensure_thread()
        self._queue.put(job)

    def _ensure_thread(self) -> None:
        # a forked child has the queue but not the thread: it gets its own
        if self._thread is not None and self._pid == _process_pid:
            return
        with self._start_lock:
            if self._thread is None or self._pid != _process_pid:
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._pid = _process_pid
                self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                result = job.fn(*job.args)
            except BaseException as err:  # reported to whoever asked; the thread serves the next job
                job.finish(None, err)
            else:
                job.finish(result, None)


_shared = LocalWriter()


def shared() -> LocalWriter:
    """The process's writer for the follower's local stores."""
    return _shared
