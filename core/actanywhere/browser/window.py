"""The takes window: a shot's takes as tiles (``tiles.py``), a viewer, and what to do with a
take (star, note, trash, send again through ``resend.py``'s dialog).

Everything that touches the disk runs in the loader's threads: the scan of the folder, the
thumbnails, the frames. A timer re-reads the records and proxy lists of running takes, so
frames appear as the job writes them.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Callable

from .. import catalog
from ..api import take_session
from ..api import takes as takes_mod
from ..api.client import Client, WorkerError
from ..api.status import FINAL
from ..api.takes import Found, Take, Takes
from .loader import Loader
from .qt import QtCore, QtWidgets, Signal, run_modal
from .resend import ResendDialog
from .tiles import TakeGrid, describe
from .viewer import Viewer

SORTS = ("newest first", "oldest first", "seed")
__all__ = ["ResendDialog", "TakesBrowser", "open_browser"]


class _MainThread(QtCore.QObject):
    """``post(fn)`` from any thread; ``fn`` runs on the UI thread (a job handle's callbacks)."""

    call = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.call.connect(lambda fn: fn())

    def post(self, fn: Callable[[], None]) -> None:
        self.call.emit(fn)


class TakesBrowser(QtWidgets.QWidget):
    """Browse the takes under ``root``; ``chosen(take)`` when the artist stars one."""

    chosen = Signal(object)
    scanned = Signal()

    def __init__(self, root: str = "", connect: Callable[[], Client] | None = None,
                 parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("ActAnywhere takes")
        self.root = os.path.abspath(root) if root else ""
        self.connect = connect or (lambda: Client.connect(start=True))
        self.found: list[Found] = []
        self.done_scanning = False
        self._news = ""  # what the last action did, said again after the rescan it causes
        self.loader = Loader(parent=self)
        self.main = _MainThread(self)
        self.handles: list = []
        self._build()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.poll)
        self.timer.start()
        self.player = QtCore.QTimer(self)
        self.player.setInterval(round(1000 / 24))
        self.player.timeout.connect(self._next_frame)
        if self.root:
            self.load(self.root)

    # layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.folder_label = QtWidgets.QLabel("no folder")
        self.shots = QtWidgets.QComboBox()
        self.shots.addItem("all shots")
        self.sort = QtWidgets.QComboBox()
        self.sort.addItems(list(SORTS))
        refresh = QtWidgets.QPushButton("Refresh")
        top = QtWidgets.QHBoxLayout()
        for w in (self.folder_label, self.shots, self.sort, refresh):
            top.addWidget(w)
        top.setStretch(0, 1)

        self.grid = TakeGrid(self.loader)

        self.viewer = Viewer(self.loader)
        self.mode = QtWidgets.QComboBox()
        self.mode.addItems(["one take", "side by side", "wipe"])
        self.against = QtWidgets.QComboBox()
        self.against.addItems(["against the second selected take", "against the plate"])
        self.play = QtWidgets.QPushButton("Play")
        self.play.setCheckable(True)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.frame_label = QtWidgets.QLabel("-")
        self.frame_label.setMinimumWidth(48)
        controls = QtWidgets.QHBoxLayout()
        for w in (self.mode, self.against, self.play, self.slider, self.frame_label):
            controls.addWidget(w)
        controls.setStretch(3, 1)

        self.info = QtWidgets.QPlainTextEdit()
        self.info.setReadOnly(True)
        self.info.setMaximumHeight(130)
        self.star = QtWidgets.QPushButton("\u2606 Choose")
        self.star.setCheckable(True)
        self.note = QtWidgets.QLineEdit()
        self.note.setPlaceholderText("note for this take")
        self.delete = QtWidgets.QPushButton("Delete take")
        self.resend = QtWidgets.QPushButton("Send again with changes...")
        actions = QtWidgets.QHBoxLayout()
        for w in (self.star, self.note, self.delete, self.resend):
            actions.addWidget(w)
        actions.setStretch(1, 1)

        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.viewer, 1)
        rl.addLayout(controls)
        rl.addWidget(self.info)
        rl.addLayout(actions)
        split = QtWidgets.QSplitter()
        split.addWidget(self.grid)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        self.status = QtWidgets.QLabel("")
        self.status.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)

        refresh.clicked.connect(lambda: self.load(self.root))
        self.shots.currentIndexChanged.connect(lambda _i: self._populate())
        self.sort.currentIndexChanged.connect(lambda _i: self._populate())
        self.grid.itemSelectionChanged.connect(self._show)
        self.mode.currentIndexChanged.connect(self._mode)
        self.against.currentIndexChanged.connect(lambda _i: self._show())
        self.slider.valueChanged.connect(self._frame)
        self.play.toggled.connect(lambda on: self.player.start() if on else self.player.stop())
        self.star.toggled.connect(self._star)
        self.note.editingFinished.connect(self._note)
        self.delete.clicked.connect(self.delete_selected)
        self.resend.clicked.connect(self._resend_dialog)
        self._actions_enabled(False)

    # loading --------------------------------------------------------------------------
    def load(self, root: str) -> None:
        """Scan ``root`` for takes (in a worker thread); the grid fills when it is done."""
        if not root:
            return
        self.root = os.path.abspath(root)
        self.done_scanning = False
        self.folder_label.setText(self.root)
        self.say(f"reading {self.root} ...")
        self.loader.call(f"scan:{self.root}:{time.monotonic()}",
                         lambda: takes_mod.find(self.root), self._scanned)

    def _scanned(self, result) -> None:
        if isinstance(result, Exception):
            self.say(f"{self.root}: cannot read the folder ({result})")
            return
        self.found = result
        shots = sorted({f.shot for f in self.found})
        current = self.shots.currentText()
        self.shots.blockSignals(True)
        self.shots.clear()
        self.shots.addItems(["all shots", *shots])
        if current in shots:
            self.shots.setCurrentText(current)
        self.shots.blockSignals(False)
        self._populate()
        bad = sum(1 for f in self.found if f.take is None)
        news, self._news = self._news, ""
        self.say((f"{news}; " if news else "") + f"{len(self.found)} take(s) in {self.root}" +
                 (f"; {bad} cannot be read (red tiles)" if bad else ""))
        self.done_scanning = True
        self.scanned.emit()

    def visible(self) -> list[Found]:
        """The takes the grid shows, in its order."""
        shot = self.shots.currentText()
        shown = [f for f in self.found if shot in ("", "all shots") or f.shot == shot]
        how = self.sort.currentText()
        if how == "seed":
            return sorted(shown, key=lambda f: (f.take is None, (f.take.seed if f.take and
                                                f.take.seed is not None else -1), f.name))
        newest = how != "oldest first"
        return sorted(shown, key=lambda f: (f.take.created if f.take else 0.0),
                      reverse=newest)

    def _populate(self) -> None:
        self.grid.fill(self.visible())
        self._show()

    # what is shown --------------------------------------------------------------------
    def selected(self) -> list[Found]:
        return self.grid.selected()

    def current(self) -> Take | None:
        chosen = [f.take for f in self.selected() if f.take is not None]
        return chosen[0] if chosen else None

    def select(self, *names: str) -> None:
        """Select takes by name (``take_002``), in that order (the first is the viewer's A)."""
        self.grid.select(*names)

    def _show(self) -> None:
        picked = self.selected()
        errors = [f for f in picked if f.take is None]
        if errors:
            self.say(errors[0].error)
        takes = [f.take for f in picked if f.take is not None]
        self._actions_enabled(bool(takes))
        if not takes:
            self.viewer.show_frames({}, {})
            self.info.setPlainText("")
            return
        a = takes[0]
        a_frames = dict(a.proxies())
        if self.against.currentIndex() == 1 or len(takes) < 2:
            b_frames, b_label = dict(a.plate_proxies()), "plate"
        else:
            b_frames, b_label = dict(takes[1].proxies()), takes[1].name
        self.viewer.show_frames(a_frames, b_frames, (a.name, b_label))
        frames = sorted(a_frames) or sorted(b_frames)
        self.slider.blockSignals(True)
        if frames:
            self.slider.setRange(frames[0], frames[-1])
            if self.viewer.frame not in frames:
                self.slider.setValue(frames[0])
        self.slider.blockSignals(False)
        self._frame(self.slider.value())
        self.info.setPlainText(describe(a))
        self.star.blockSignals(True)
        self.star.setChecked(a.starred)
        self.star.setText("\u2605 Chosen" if a.starred else "\u2606 Choose")
        self.star.blockSignals(False)
        self.note.setText(a.note)

    def _frame(self, frame: int) -> None:
        self.viewer.set_frame(frame)
        self.frame_label.setText(str(frame))

    def _next_frame(self) -> None:
        frames = sorted(self.viewer.a)
        if not frames:
            return
        later = [f for f in frames if f > self.viewer.frame]
        self.slider.setValue(later[0] if later else frames[0])

    def _mode(self, index: int) -> None:
        self.viewer.set_mode(("one", "side", "wipe")[index])

    def _actions_enabled(self, on: bool) -> None:
        for w in (self.star, self.note, self.delete, self.resend):
            w.setEnabled(on)

    def say(self, line: str) -> None:
        """One line in the status bar (errors included: never a dialog or a traceback)."""
        self.status.setText(line)

    # running takes ----------------------------------------------------------------------
    def poll(self) -> None:
        """Re-read the records of takes that have not ended; refresh what changed."""
        changed = set()
        for found in self.found:
            take = found.take
            if take is None or take.status in FINAL:
                continue
            try:
                found.take = Take.load(found.folder, found.record)
            except (OSError, ValueError, TypeError):
                continue
            changed.add(id(found))
        if not changed:
            return
        self.grid.refresh()
        if any(id(f) in changed for f in self.selected()):
            self._show()

    # actions --------------------------------------------------------------------------
    def _star(self, on: bool) -> None:
        take = self.current()
        if take is None:
            return
        try:
            if on and _is_take_folder(take):
                Takes(os.path.dirname(take.folder)).choose(take.name)
            else:
                take.mark(starred=on)
        except OSError as exc:
            self.say(f"{take.path}: cannot save the star ({exc})")
            return
        for found in self.found:  # the others of that shot lost their star on disk
            if found.take is not None:
                with contextlib.suppress(OSError, ValueError, TypeError):
                    found.take = Take.load(found.folder, found.record)
        self._populate()
        if on:
            self.say(f"{take.name} chosen")
            self.chosen.emit(take)

    def _note(self) -> None:
        take = self.current()
        if take is None or self.note.text() == take.note:
            return
        try:
            take.mark(note=self.note.text())
            self.say(f"{take.name}: note saved")
        except OSError as exc:
            self.say(f"{take.path}: cannot save the note ({exc})")

    def delete_selected(self) -> None:
        """Move the selected takes into ``<root>/.trash`` (nothing is deleted)."""
        moved = []
        for found in self.selected():
            if found.take is None:
                continue
            try:
                target = takes_mod.trash(found.take, self.root)
            except OSError as exc:
                self.say(f"{found.take.name}: not moved to the trash ({exc})")
                return
            self.loader.forget(found.folder)
            moved.append(f"{found.take.name} -> {os.path.relpath(target, self.root)}")
        if moved:
            self._news = "moved " + "; ".join(moved)
            self.load(self.root)

    def _resend_dialog(self) -> None:
        take = self.current()
        if take is None:
            return
        dialog = ResendDialog(take, self)
        if run_modal(dialog) == QtWidgets.QDialog.Accepted:
            self.send_again(take, **dialog.changes())

    def send_again(self, take: Take, seed: int | None = None, background: str | None = None,
                   label: str = "") -> Take | None:
        """A new take from ``take``'s spec with the seed / background changed, sent to the
        worker; it appears in the grid at once and its frames as they are written."""
        spec = copy.deepcopy(take.spec)
        if not spec:
            self.say(f"{take.name}: its record has no spec to send again")
            return None
        if seed is not None:
            catalog.set_seed(spec, seed)
        if background:
            spec.setdefault("background", {})["path"] = background
        parent = os.path.dirname(take.folder)
        try:
            new = Takes(parent).new()
        except OSError as exc:
            self.say(f"{parent}: cannot make a take folder ({exc})")
            return None
        stem = takes_mod.stem_of(take.output) if take.output else "take"

        def ended(t: Take, handle) -> None:
            self._news = f"{t.name}: {handle.status}" + (f" ({handle.error})" if handle.error
                                                          else "")
            self.load(self.root)

        try:
            handle = take_session.start(new, spec, self.connect, stem=stem,
                                        main_thread=self.main.post, on_end=ended,
                                        label=label, client="takes browser")
        except (WorkerError, OSError) as exc:
            self.say(f"{new.name}: not sent ({exc})")
            return None
        self.handles.append(handle)
        self._news = f"{new.name}: sent to the worker"
        self.load(self.root)
        return new

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Stop the timers and let the loader's threads finish before the window goes."""
        self.timer.stop()
        self.player.stop()
        self.loader.wait()
        super().closeEvent(event)

    # waiting (scripts, tests, screenshots) ----------------------------------------------
    def settled(self) -> bool:
        """The scan is in, every thumbnail and picture asked for is decoded."""
        return self.done_scanning and not self.loader.pending and self.viewer.ready()

    def wait_settled(self, timeout: float = 20.0) -> bool:
        """Run the event loop until ``settled`` (or ``timeout`` s)."""
        app = QtWidgets.QApplication.instance()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            app.processEvents(QtCore.QEventLoop.AllEvents, 50)
            if self.settled():
                app.processEvents()
                return True
            time.sleep(0.005)
        return False

    def screenshot(self, path: str) -> str:
        """The window, as it is once settled, written to ``path`` (PNG)."""
        self.show()  # laid out at its size (offscreen: nothing appears)
        self.grid.doItemsLayout()
        self.wait_settled()
        if not self.grab().toImage().save(path):
            raise OSError(f"{path}: cannot write the screenshot")
        return path


def open_browser(root: str, select: list[str] | tuple[str, ...] = (), mode: str = "one",
                 against: str = "take", frame: int | None = None,
                 size: tuple[int, int] = (1280, 760)) -> TakesBrowser:
    """A browser on ``root`` with these takes selected, settled (scanned, pictures in)."""
    browser = TakesBrowser(root)
    browser.resize(*size)
    browser.wait_settled()
    browser.against.setCurrentIndex(1 if against == "plate" else 0)
    browser.mode.setCurrentIndex({"one": 0, "side": 1, "wipe": 2}.get(mode, 0))
    if select:
        browser.select(*select)
    elif browser.grid.count():
        browser.grid.item(0).setSelected(True)
    if frame is not None:
        browser.slider.setValue(frame)
    browser.wait_settled()
    return browser


def _is_take_folder(take: Take) -> bool:
    return take.record == takes_mod.TAKE_FILE and take.number > 0
