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

from ..errors import EXIT_CODES, ActAnywhereError
from . import demo, farm, generate, inspect, model, motion, segment, serve, takes, train

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
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
