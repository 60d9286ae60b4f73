"""The takes as the browser's grid shows them: a tile per take (its middle proxy frame so far,
name, seed, engine, status; a red tile for a record that cannot be read) and the description
the info panel gives of the take shown."""

from __future__ import annotations

from ..api.takes import Found, Take
from .loader import Loader
from .qt import QtCore, QtGui, QtWidgets

TILE = QtCore.QSize(192, 108)
ROLE = QtCore.Qt.UserRole  # an item's Found; ROLE + 1: the loader key of its picture


class TakeGrid(QtWidgets.QListWidget):
    """Tiles of takes, several selectable; pictures arrive from ``loader`` as it decodes them."""

    def __init__(self, loader: Loader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader
        loader.ready.connect(self._thumb_ready)
        self.setViewMode(QtWidgets.QListView.IconMode)
        self.setFlow(QtWidgets.QListView.LeftToRight)
        self.setWrapping(True)
        self.setIconSize(TILE)
        self.setGridSize(QtCore.QSize(TILE.width() + 16, TILE.height() + 44))
        self.setResizeMode(QtWidgets.QListView.Adjust)
        self.setMovement(QtWidgets.QListView.Static)
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self.setSelectionMode(QtWidgets.QAbstractItemView.ExtendedSelection)
        self.setMinimumWidth(2 * (TILE.width() + 16) + 36)  # two columns and a scroll bar

    def fill(self, found: list[Found]) -> None:
        """A tile per take, in this order; the takes selected before stay selected (no
        selection signal is sent)."""
        selected = {f.folder + f.record for f in self.selected()}
        self.blockSignals(True)
        self.clear()
        for one in found:
            item = QtWidgets.QListWidgetItem(tile_text(one))
            item.setData(ROLE, one)
            if one.take is None:
                item.setIcon(QtGui.QIcon(_error_tile()))
                item.setToolTip(one.error)
            else:
                item.setIcon(QtGui.QIcon(_blank_tile()))
                item.setToolTip(one.take.path)
                self._thumb(item, one.take)
            self.addItem(item)
            if one.folder + one.record in selected:
                item.setSelected(True)
        self.blockSignals(False)

    def refresh(self) -> None:
        """Every readable take's text and picture again (running takes changed)."""
        for item in self._items():
            found = item.data(ROLE)
            if found.take is not None:
                item.setText(tile_text(found))
                self._thumb(item, found.take)

    def selected(self) -> list[Found]:
        return [item.data(ROLE) for item in self.selectedItems()]

    def select(self, *names: str) -> None:
        """Select takes by name (``take_002``), in that order."""
        self.clearSelection()
        for name in names:
            for item in self._items():
                if item.data(ROLE).name == name:
                    item.setSelected(True)

    def _items(self) -> list[QtWidgets.QListWidgetItem]:
        return [self.item(i) for i in range(self.count())]

    def _thumb(self, item: QtWidgets.QListWidgetItem, take: Take) -> None:
        """The tile's picture: the middle proxy frame so far (asked of the loader)."""
        frames = take.proxies()
        if not frames:
            return
        path = frames[len(frames) // 2][1]
        item.setData(ROLE + 1, Loader.key(path, TILE.width()))
        image = self.loader.image(path, TILE.width())
        if image is not None and not image.isNull():
            item.setIcon(QtGui.QIcon(QtGui.QPixmap.fromImage(_tile(image))))

    def _thumb_ready(self, key: str) -> None:
        for item in self._items():
            if item.data(ROLE + 1) == key:
                image = self.loader.cache.get(key)
                if image is not None and not image.isNull():
                    item.setIcon(QtGui.QIcon(QtGui.QPixmap.fromImage(_tile(image))))


def tile_text(found: Found) -> str:
    take = found.take
    if take is None:
        return f"{found.name}\ncannot read take.json"
    seed = f" seed {take.seed}" if take.seed is not None else ""
    star = "\u2605 " if take.starred else ""
    return f"{star}{take.name}{seed}\n{take.engine or '?'}, {take.status}"


def describe(take: Take) -> str:
    """The info panel's lines for ``take``: status, engine, inputs, timings, outputs."""
    spec = take.spec or {}
    lines = [f"{take.name}: {take.label or take.engine}, {take.status}"
             + (f" ({take.error})" if take.error else ""),
             f"engine {take.engine or '?'}" + (f", seed {take.seed}" if take.seed is not None
                                               else "")
             + (f", model {take.model_hash}" if take.model_hash else ""),
             f"background {(spec.get('background') or {}).get('path', '?')}",
             f"motion {take.motion or (spec.get('motion') or {}).get('source', 'none')}, "
             f"frames {take.frames or 'the plate range'}, {len(take.proxies())} proxy frame(s)",
             "timings " + ", ".join(f"{k} {v:g}" for k, v in take.timings.items())
             if take.timings else "timings -",
             f"output {take.output}", f"proxies {take.view or '-'}"]
    return "\n".join(lines)


def _tile(image: QtGui.QImage) -> QtGui.QImage:
    """``image`` centred on a tile-sized canvas (every tile the same size)."""
    canvas = QtGui.QImage(TILE, QtGui.QImage.Format_RGB32)
    canvas.fill(QtGui.QColor(30, 30, 30))
    scaled = image.scaled(TILE, QtCore.Qt.KeepAspectRatio, QtCore.Qt.SmoothTransformation)
    p = QtGui.QPainter(canvas)
    p.drawImage((TILE.width() - scaled.width()) // 2, (TILE.height() - scaled.height()) // 2,
                scaled)
    p.end()
    return canvas


def _blank_tile() -> QtGui.QPixmap:
    pix = QtGui.QPixmap(TILE)
    pix.fill(QtGui.QColor(40, 40, 40))
    return pix


def _error_tile() -> QtGui.QPixmap:
    pix = QtGui.QPixmap(TILE)
    pix.fill(QtGui.QColor(110, 30, 30))
    p = QtGui.QPainter(pix)
    p.setPen(QtGui.QColor(255, 220, 220))
    p.drawText(pix.rect(), QtCore.Qt.AlignCenter, "cannot read\nthis take")
    p.end()
    return pix
