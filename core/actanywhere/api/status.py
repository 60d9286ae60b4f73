"""The words a job's progress and end are told in, shared by the worker and every host.

Progress events are JSON objects ``{"stage", "done", "total", "frame", "eta_s", "message"}``
(only the fields that have a value); a job's status moves through ``STATUSES``.
"""

from __future__ import annotations

#: stages that count work, in the order a job goes through them: prepare (plan the shot),
#: matte (mattes that need the whole shot: tracking, smoothing), load (a model), read (plate
#: frames into a shot engine), denoise (diffusion steps), frames (output frames written)
WORK_STAGES = ("prepare", "matte", "load", "read", "denoise", "frames")
#: stages that annotate a run: a warning for the artist, the run's own end
OTHER_STAGES = ("warning", "done")
#: the worker's last event of a job: ``message`` is the final status, ``exit_code`` the CLI's
END = "end"
STAGES = (*WORK_STAGES, *OTHER_STAGES, END)

#: a job waits (queued), runs, then ends in one of FINAL; interrupted: the worker stopped
#: while it ran (resume finishes the missing frames)
ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled", "interrupted")
STATUSES = (*ACTIVE, *FINAL)


def describe(event: dict) -> str:
    """A progress event as a host shows it: ``frames 3/10, 12 s left``, or the warning."""
    if event.get("stage") == "warning":
        return f"warning: {event.get('message', '')}"
    text = f"{event.get('stage', '')} {event.get('done', 0)}/{event.get('total', 0)}"
    if event.get("eta_s") is not None:
        text += f", {event['eta_s']:.0f} s left"
    return text
