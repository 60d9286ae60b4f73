"""The training run folder's files: resumable state (``state/step-N``, written whole or not at
all) and the logs (``log.csv``, TensorBoard when installed)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file
from torch import nn

from ..model import checkpoint
from .config import TrainConfig

if TYPE_CHECKING:
    from diffusers.training_utils import EMAModel

Report = Callable[[str], None]
STATE = "state"


def _state_dir(output: str) -> str:
    return os.path.join(output, STATE)


def latest_state(output: str) -> str | None:
    """The run folder's newest complete state folder; None before the first."""
    root = _state_dir(output)
    if not os.path.isdir(root):
        return None
    done = sorted(d for d in os.listdir(root) if d.startswith("step-")
                  and os.path.isfile(os.path.join(root, d, "meta.json")))
    return os.path.join(root, done[-1]) if done else None


def save_state(output: str, step: int, modules: dict[str, nn.Module],
               optimizer: torch.optim.Optimizer, ema: EMAModel | None, config_json: str, *,
               keep: int = 2) -> str:
    """Resumable state at ``step``, written to a temp folder and renamed (never half-written);
    the ``keep`` newest are kept."""
    root = _state_dir(output)
    final = os.path.join(root, f"step-{step:08d}")
    with checkpoint.atomic_folder(final, ".step-") as tmp:
        for name, module in modules.items():
            checkpoint.save_weights(module, os.path.join(tmp, f"{name}.safetensors"))
        torch.save(optimizer.state_dict(), os.path.join(tmp, "optimizer.pt"))
        if ema is not None:
            torch.save(ema.state_dict(), os.path.join(tmp, "ema.pt"))
        with open(os.path.join(tmp, "meta.json"), "w") as fh:
            json.dump({"step": step, "config": json.loads(config_json)}, fh, indent=2)
    older = sorted(d for d in os.listdir(root) if d.startswith("step-"))[:-keep]
    for d in older:
        shutil.rmtree(os.path.join(root, d), ignore_errors=True)
    return final


def load_state(folder: str, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer,
               ema: EMAModel | None) -> int:
    """Weights, optimizer and EMA from a state folder, in place; returns its step."""
    with open(os.path.join(folder, "meta.json")) as fh:
        step = int(json.load(fh)["step"])
    for name, module in modules.items():
        module.load_state_dict(load_file(os.path.join(folder, f"{name}.safetensors")))
    # our own file, written by save_state: full unpickling is needed for optimizer state
    optimizer.load_state_dict(torch.load(os.path.join(folder, "optimizer.pt"),
                                         weights_only=False))
    if ema is not None:
        ema.load_state_dict(torch.load(os.path.join(folder, "ema.pt"), weights_only=False))
    return step


class Log:
    """log.csv (and TensorBoard): every ``log_every`` steps the mean loss since the last row."""

    def __init__(self, cfg: TrainConfig, tensorboard: bool, report: Report) -> None:
        self.path = os.path.join(cfg.output, "log.csv")
        self.every, self.steps, self.report = cfg.log_every, cfg.steps, report
        new = not os.path.exists(self.path)
        self.fh = open(self.path, "a", newline="")  # noqa: SIM115 - closed in close()
        self.csv = csv.writer(self.fh)
        if new:
            self.csv.writerow(["step", "loss", "lr", "seconds_per_step", "elapsed"])
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(os.path.join(cfg.output, "tensorboard"))
            except ImportError:
                report("tensorboard is not installed: logging to log.csv only "
                       "(pip install tensorboard)")
        self.t_start = self.t_last = time.perf_counter()
        self.running, self.count = 0.0, 0

    def add(self, done: int, loss: float, lr: float, last: int) -> None:
        """Step ``done``'s loss; a row (and a report line) when a row is due or at ``last``."""
        self.running += loss
        self.count += 1
        if done % self.every and done != last:
            return
        now = time.perf_counter()
        mean, sps = self.running / self.count, (now - self.t_last) / self.count
        self.write(done, mean, lr, sps, now - self.t_start)
        self.report(f"step {done}/{self.steps} loss {mean:.4f} ({sps:.2f} s/step)")
        self.t_last, self.running, self.count = now, 0.0, 0

    def write(self, step: int, loss: float, lr: float, sps: float, elapsed: float) -> None:
        self.csv.writerow([step, f"{loss:.6f}", f"{lr:.3g}", f"{sps:.3f}", f"{elapsed:.1f}"])
        self.fh.flush()
        if self.tb is not None:
            self.tb.add_scalar("train/loss", loss, step)
            self.tb.add_scalar("train/lr", lr, step)

    def close(self) -> None:
        self.fh.close()
        if self.tb is not None:
            self.tb.close()
