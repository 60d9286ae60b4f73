"""``actanywhere takes``: the takes browser, standalone (docs/takes.md)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer


def takes(
    folder: Annotated[str, typer.Argument(help="Folder holding take folders (take.json), "
                                          "searched three levels down")] = ".",
    select: Annotated[str, typer.Option(help="Takes to select, comma-separated: the first "
                                        "is shown, the second compared")] = "",
    mode: Annotated[str, typer.Option(help="one, side or wipe")] = "one",
    against: Annotated[str, typer.Option(help="take (the second selected) or plate")] = "take",
    frame: Annotated[int | None, typer.Option(help="Frame to show")] = None,
    screenshot: Annotated[str, typer.Option(help="Write the window to this PNG and exit "
                                            "(offscreen: needs no display)")] = "",
    size: Annotated[str, typer.Option(help="Window size WxH")] = "1280x760",
) -> None:
    """Browse, compare and choose the takes of a shot (PySide6)."""
    try:
        from ..browser import qt
    except ImportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    from ..browser.window import open_browser

    if not os.path.isdir(folder):
        typer.echo(f"error: {folder}: no such folder; give the folder that holds the takes",
                   err=True)
        raise typer.Exit(3)
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        typer.echo(f"error: --size {size!r}: write WIDTHxHEIGHT, e.g. 1280x760", err=True)
        raise typer.Exit(2) from None
    app = qt.QtWidgets.QApplication.instance()
    if app is None:
        _platform(bool(screenshot))
        app = qt.QtWidgets.QApplication([])
    browser = open_browser(folder, [s for s in select.split(",") if s], mode, against, frame,
                           (w, h))
    code = 0
    if screenshot:
        browser.screenshot(screenshot)
        typer.echo(screenshot)
    else:
        browser.show()
        code = qt.run_modal(app)
    browser.close()
    # Qt's objects are not torn down by Python's exit in a safe order (PySide may crash
    # there): the window is closed and its threads are done, so leave at once
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _platform(screenshot: bool) -> None:
    """Qt's platform before the application starts: offscreen for a screenshot (no display
    needed) unless QT_QPA_PLATFORM names one; the window itself, on Linux with no display
    (no DISPLAY or WAYLAND_DISPLAY) and no platform named, is one line and exit 2, where Qt
    would abort the process (``Could not load the Qt platform plugin "xcb"``)."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return
    if screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        typer.echo("error: no display (DISPLAY and WAYLAND_DISPLAY are unset): the takes "
                   "browser needs one; run it on a desktop or with ssh -X, or write a "
                   "picture with --screenshot PNG", err=True)
        raise typer.Exit(2)
