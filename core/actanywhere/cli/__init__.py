"""The ``actanywhere`` command line, one module per command group.

    generate   a ShotSpec to output frames (here, or --worker)     generate.py
    segment    a shot's matte as an EXR sequence with previews     segment.py
    motion     the background's motion of a shot (motion.json)     motion.py
    serve      the local worker that keeps models warm            serve.py
    info       range, gaps, windows and channels of a sequence    inspect.py
    doctor     what this install can do                            inspect.py
    version    the version                                         inspect.py
    demo       make and run the built-in shot                      demo.py
    takes      browse, compare and choose a shot's takes (Qt)      takes.py
    farm       export shots x takes as a farm job bundle (OpenJD)  farm.py
    model      init | info | verify checkpoints                    model.py
    train      train or fine-tune a model                          train.py
    evaluate   score a model against untrained                    train.py
    train-motion  train and measure the subject motion source     train.py

Commands hold flags and printing only; what they do lives in the package. Exit codes: see
``errors.EXIT_CODES`` (0 ok, 2 bad spec/flag, 3 bad input, 4 output problem, 5 model problem,
130 cancelled, 1 internal error).
"""

from __future__ import annotations

import os
import sys

import typer
import typer.core

from ..errors import EXIT_CODES, ActAnywhereError
from . import demo, farm, generate, inspect, model, motion, segment, serve, takes, train

#: a hyphen that text wrapping does not break at, while help is laid out
_HYPHEN = "\u2011"
#: click's context as typer uses it (typer may carry its own copy of click)
_ClickContext = typer.core.TyperCommand.context_class


class _Help(_ClickContext.formatter_class):
    """Click's plain help (typer's rich tables cut flag names short of 100 columns): flags
    in a column of their own, help wrapped between words only, so a flag in a sentence
    (``--matte-source``) is never split at its hyphen."""

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        start = len(self.buffer)
        super().write_dl([(a, b.replace("-", _HYPHEN)) for a, b in rows], col_max,
                         col_spacing)
        self.buffer[start:] = [t.replace(_HYPHEN, "-") for t in self.buffer[start:]]

    def write_text(self, text: str) -> None:
        start = len(self.buffer)
        super().write_text(text.replace("-", _HYPHEN))
        self.buffer[start:] = [t.replace(_HYPHEN, "-") for t in self.buffer[start:]]


class _Context(_ClickContext):
    formatter_class = _Help


class _Command(typer.core.TyperCommand):
    context_class = _Context


class _Group(typer.core.TyperGroup):
    context_class = _Context


def _plain_help(typer_app: typer.Typer) -> None:
    """Every command and group of ``typer_app`` (and its sub-apps) shows ``_Help``."""
    for command in typer_app.registered_commands:
        if command.cls in (None, typer.core.TyperCommand):
            command.cls = _Command
    for group in typer_app.registered_groups:
        if not isinstance(group.cls, type) or group.cls is typer.core.TyperGroup:
            group.cls = _Group
        if group.typer_instance is not None:
            _plain_help(group.typer_instance)


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, cls=_Group,
                  help="ActAnywhere for VFX: put a filmed subject into a new, moving background.",
                  epilog="Exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()))
app.command()(generate.generate)
app.command()(segment.segment)
app.command()(motion.motion)
app.command()(serve.serve)
app.command()(inspect.info)
app.command()(inspect.doctor)
app.command()(demo.demo)
app.command()(takes.takes)
app.add_typer(model.app, name="model")
app.add_typer(farm.app, name="farm")
app.command()(train.train)
app.command()(train.evaluate)
app.command("train-motion")(train.train_motion)
app.command()(inspect.version)
_plain_help(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI and turns errors into one line and an exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub at run time
    raw = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in raw
    args = [a for a in raw if a != "--debug"]
    try:
        app(args=args, prog_name="actanywhere", standalone_mode=True)
    except SystemExit as exc:  # typer/click exit: usage errors are 2
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ActAnywhereError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: cancelled", file=sys.stderr)
        return 130
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
