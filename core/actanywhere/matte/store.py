"""A shot's mattes held in memory up to a limit and in a temporary file beyond it, so the matte
stage of a long shot does not grow the process with the shot's length.

``MatteStore(count)`` is a fixed-length sequence of one shot's 2-D mattes (float16 unless told
otherwise). ``limit(mb)``, a context manager, sets how many MB the stores made inside it keep in
memory together (the matte stage sets ``matte.memory_mb``); the rest wait in an unnamed
temporary file in the system temp folder (``TMPDIR``), which the system removes when it is
closed, even after a crash. Outside ``limit`` stores keep everything in memory.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from ..errors import OutputError


class Budget:
    """Bytes of mattes the stores drawing on it may keep in memory together (None: no limit)."""

    def __init__(self, limit: int | None) -> None:
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.limit is not None and self.used + n > self.limit:
                return False
            self.used += n
            return True

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "matte_budget", default=None)


@contextlib.contextmanager
def limit(mb: float | None) -> Iterator[Budget]:
    """Stores made inside keep at most ``mb`` MB of mattes in memory together (None: all)."""
    budget = Budget(None if mb is None else int(mb * 2**20))
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


class MatteStore(Sequence[np.ndarray]):
    """``count`` mattes of one shape, by index; ``store[i]`` gives a copy. Every index must be
    set before it is read (``missing()`` lists those that are not)."""

    def __init__(self, count: int, dtype: type = np.float16) -> None:
        self.count, self.dtype = count, np.dtype(dtype)
        self.shape: tuple[int, int] | None = None
        self._held: dict[int, np.ndarray] = {}
        self._filed: set[int] = set()
        self._file = None
        self._budget = _budget.get() or Budget(None)

    def __len__(self) -> int:
        return self.count

    @property
    def spilled(self) -> int:
        """Frames in the file."""
        return len(self._filed)

    def _index(self, i: int) -> int:
        j = i + self.count if i < 0 else i
        if not 0 <= j < self.count:
            raise IndexError(f"matte {i} of {self.count}")
        return j

    def __setitem__(self, i: int, matte: np.ndarray) -> None:
        i = self._index(i)
        m = np.array(matte, self.dtype, copy=True, order="C")
        if self.shape is None:
            self.shape = (int(m.shape[0]), int(m.shape[1])) if m.ndim == 2 else None
        if m.ndim != 2 or m.shape != self.shape:
            raise ValueError(f"matte {i}: shape {m.shape}, the shot's mattes are {self.shape}")
        if i in self._held:
            self._held[i] = m
        elif i in self._filed or not self._budget.take(m.nbytes):
            self._write(i, m)
        else:
            self._held[i] = m

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.count))]
        i = self._index(i)
        if i in self._held:
            return self._held[i].copy()
        if i not in self._filed:
            raise IndexError(f"matte {i} of {self.count} was never set")
        return self._read(i)

    def missing(self) -> list[int]:
        """Indices never set."""
        return [i for i in range(self.count) if i not in self._held and i not in self._filed]

    # ------------------------------------------------------------------ the file
    def _nbytes(self) -> int:
        assert self.shape is not None
        return self.shape[0] * self.shape[1] * self.dtype.itemsize

    def _write(self, i: int, m: np.ndarray) -> None:
        folder = tempfile.gettempdir()
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(  # noqa: SIM115 (closed by close())
                    prefix="actanywhere-mattes-", dir=folder)
            view, offset = memoryview(m).cast("B"), i * self._nbytes()
            while view:
                n = os.pwrite(self._file.fileno(), view, offset)
                view, offset = view[n:], offset + n
        except OSError as exc:
            raise OutputError(
                f"{folder}: no room for the shot's mattes beyond matte.memory_mb "
                f"({exc.strerror}); free space there, point TMPDIR at a larger disk, or raise "
                "matte.memory_mb") from exc
        self._filed.add(i)

    def _read(self, i: int) -> np.ndarray:
        assert self._file is not None and self.shape is not None
        out = np.empty(self.shape, self.dtype)
        view, offset = memoryview(out).cast("B"), i * self._nbytes()
        while view:
            n = os.preadv(self._file.fileno(), [view], offset)
            if n <= 0:
                raise OSError(f"short read of matte {i} from the shot's temporary matte file")
            view, offset = view[n:], offset + n
        return out

    def close(self) -> None:
        """Give the memory back and remove the file; the store is empty after."""
        self._budget.give(sum(m.nbytes for m in self._held.values()))
        self._held.clear()
        self._filed.clear()
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

