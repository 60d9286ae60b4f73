"""The viewer: one take, two side by side, or a wipe between them (or a take and its plate)."""

from __future__ import annotations

from .loader import Loader
from .qt import QtCore, QtGui, QtWidgets

MODES = ("one", "side", "wipe")
Frames = dict[int, str]  # frame -> proxy file


class Viewer(QtWidgets.QWidget):
    """Paints proxy frames of ``a`` (and ``b``) at ``frame``; drag to move the wipe."""

    def __init__(self, loader: Loader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.mode = "one"
        self.a: Frames = {}
        self.b: Frames = {}
        self.labels = ("", "")
        self.frame = 0
        self.wipe = 0.5
        self._box: QtCore.QRect | None = None  # where the last wipe's pictures were drawn
        self.setMinimumSize(320, 180)
        loader.ready.connect(self._ready)

    def show_frames(self, a: Frames, b: Frames, labels: tuple[str, str] = ("", "")) -> None:
        self.a, self.b, self.labels = a, b, labels
        self._fetch()

    def set_mode(self, mode: str) -> None:
        self.mode = mode if mode in MODES else "one"
        self._fetch()

    def set_frame(self, frame: int) -> None:
        self.frame = frame
        self._fetch()

    def _fetch(self) -> None:
        """Ask for this picture's images now (decoded in the loader's threads), then paint."""
        for path in self.wanted():
            self.loader.image(path)
        self.update()

    def wanted(self) -> list[str]:
        """The files the current picture needs."""
        files = [self.a.get(self.frame)]
        if self.mode != "one":
            files.append(self.b.get(self.frame))
        return [f for f in files if f]

    def ready(self) -> bool:
        """Every image of the current picture is decoded (tests and screenshots wait on it)."""
        return all(Loader.key(f) in self.loader.cache for f in self.wanted())

    def _ready(self, key: str) -> None:
        if any(key == Loader.key(f) for f in self.wanted()):
            self.update()

    # painting --------------------------------------------------------------------------
    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt's name
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), QtGui.QColor(24, 24, 24))
        r = self.rect()
        if self.mode == "side":
            half = r.width() // 2
            self._draw(p, self.a, QtCore.QRect(r.x(), r.y(), half - 2, r.height()),
                       self.labels[0])
            self._draw(p, self.b, QtCore.QRect(r.x() + half + 2, r.y(), r.width() - half - 2,
                                               r.height()), self.labels[1])
        elif self.mode == "wipe":
            box = self._box = self._draw(p, self.a, r, "")
            if box is not None:
                x = box.x() + round(box.width() * self.wipe)
                p.save()
                p.setClipRect(QtCore.QRect(x, box.y(), box.right() - x + 1, box.height()))
                self._draw(p, self.b, r, "", fit=box)
                p.restore()
                p.setPen(QtGui.QPen(QtGui.QColor(255, 200, 0), 1))
                p.drawLine(x, box.y(), x, box.bottom())
                self._label(p, box, self.labels[0], left=True)
                self._label(p, box, self.labels[1], left=False)
        else:
            self._draw(p, self.a, r, self.labels[0])
        p.end()

    def _draw(self, p: QtGui.QPainter, frames: Frames, area: QtCore.QRect, label: str,
              fit: QtCore.QRect | None = None) -> QtCore.QRect | None:
        path = frames.get(self.frame)
        image = self.loader.image(path) if path else None
        if image is None or image.isNull():
            p.setPen(QtGui.QColor(160, 160, 160))
            text = ("loading..." if path and image is None else
                    f"cannot read {path}" if path else f"no frame {self.frame}")
            p.drawText(area, QtCore.Qt.AlignCenter, text)
            return None
        box = fit or _fit(image.size(), area)
        p.drawImage(box, image)
        if label:
            self._label(p, box, label, left=True)
        return box

    def _label(self, p: QtGui.QPainter, box: QtCore.QRect, text: str, left: bool) -> None:
        if not text:
            return
        p.setPen(QtGui.QColor(255, 255, 255))
        flags = QtCore.Qt.AlignTop | (QtCore.Qt.AlignLeft if left else QtCore.Qt.AlignRight)
        p.drawText(box.adjusted(6, 4, -6, -4), flags, text)

    # the wipe follows the mouse while a button is down --------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802
        self._move_wipe(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        self._move_wipe(event)

    def _move_wipe(self, event) -> None:
        if self.mode != "wipe":
            return
        x = event.position().x() if hasattr(event, "position") else event.x()
        box = self._box or self.rect()
        self.wipe = min(max((x - box.x()) / max(box.width(), 1), 0.0), 1.0)
        self.update()


def _fit(size: QtCore.QSize, area: QtCore.QRect) -> QtCore.QRect:
    """The largest rectangle of ``size``'s aspect centred in ``area``."""
    scale = min(area.width() / max(size.width(), 1), area.height() / max(size.height(), 1))
    w, h = max(1, round(size.width() * scale)), max(1, round(size.height() * scale))
    return QtCore.QRect(area.x() + (area.width() - w) // 2, area.y() + (area.height() - h) // 2,
                        w, h)
