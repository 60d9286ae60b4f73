"""Frames on a thread pool, with cancel and fail-fast (the one helper every stage uses)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def each(fn: Callable[[T], R], items: list[T], threads: int,
         cancel: threading.Event) -> list[R | None]:
    """``fn(item)`` for every item on ``threads`` threads, results in order. The first
    exception cancels the items not yet started and is raised; items not started when
    ``cancel`` is set are skipped (their result is None); Ctrl-C sets ``cancel``."""
    failed = threading.Event()

    def guarded(item: T) -> R | None:
        if cancel.is_set() or failed.is_set():
            return None
        return fn(item)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="aa-frame") as pool:
        futures = [pool.submit(guarded, item) for item in items]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
            for fut in futures:
                if fut.done() and fut.exception() is not None:
                    failed.set()
                    raise fut.exception()  # type: ignore[misc]
        except KeyboardInterrupt:
            cancel.set()
            raise
        finally:
            if failed.is_set() or cancel.is_set():
                for fut in futures:
                    fut.cancel()
        return [fut.result() for fut in futures if not fut.cancelled()]
