"""Images and take lists loaded off the UI thread, kept in a bounded cache."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .qt import QtCore, QtGui, Signal


class _Sink(QtCore.QObject):
    """Carries a worker thread's result to the UI thread (a queued signal)."""

    done = Signal(str, object)


class _Task(QtCore.QRunnable):
    def __init__(self, key: str, work: Callable[[], Any], sink: _Sink) -> None:
        super().__init__()
        self.key, self.work, self.sink = key, work, sink

    def run(self) -> None:
        try:
            result = self.work()
        except Exception as exc:  # noqa: BLE001 - the UI shows it; the thread must not die
            result = exc
        self.sink.done.emit(self.key, result)


class Loader(QtCore.QObject):
    """``image(path, width)`` answers from the cache or None and loads the file in a worker
    thread (``QImage`` decodes anywhere; ``ready(key)`` says when it is there); ``call``
    runs any function there and hands its result to a callback on the UI thread."""

    ready = Signal(str)

    def __init__(self, capacity: int = 800, threads: int = 2, parent=None) -> None:
        super().__init__(parent)
        self.pool = QtCore.QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self.capacity = capacity
        self.cache: OrderedDict[str, QtGui.QImage] = OrderedDict()
        self.pending: dict[str, Callable[[Any], None] | None] = {}
        self.sink = _Sink(self)
        self.sink.done.connect(self._done)

    @staticmethod
    def key(path: str, width: int = 0) -> str:
        return f"{path}@{width}"

    def image(self, path: str, width: int = 0) -> QtGui.QImage | None:
        """The decoded image (a null QImage when the file cannot be read), or None while it
        loads."""
        key = self.key(path, width)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        if key not in self.pending:
            self.pending[key] = None
            self.pool.start(_Task(key, lambda: _decode(path, width), self.sink))
        return None

    def call(self, key: str, work: Callable[[], Any], then: Callable[[Any], None]) -> None:
        self.pending[key] = then
        self.pool.start(_Task(key, work, self.sink))

    def forget(self, prefix: str) -> None:
        """Drop cached images of files under ``prefix`` (they changed or moved)."""
        for key in [k for k in self.cache if k.startswith(prefix)]:
            del self.cache[key]

    def wait(self, ms: int = 5000) -> None:
        self.pool.waitForDone(ms)

    def _done(self, key: str, result: Any) -> None:
        then = self.pending.pop(key, None)
        if then is not None:
            then(result)
            return
        image = result if isinstance(result, QtGui.QImage) else QtGui.QImage()
        self.cache[key] = image
        while len(self.cache) > self.capacity:
            self.cache.popitem(last=False)
        self.ready.emit(key)


def _decode(path: str, width: int) -> QtGui.QImage:
    image = QtGui.QImage(path)
    if not image.isNull() and width and image.width() > width:
        image = image.scaledToWidth(width, QtCore.Qt.SmoothTransformation)
    return image
