"""A long diffusion shot split into overlapping parts (farm tasks) and joined again.

``plan`` cuts a shot's frames into parts of ``size`` frames that share ``overlap`` frames
with the next; each part is one farm task that generates only its frames with the whole
shot's noise, windows and camera path (``<settings>.shot_frames``), so adjacent parts already
agree closely where they overlap. ``join`` (the final, dependent farm step) writes the take's
frames: a frame of one part is copied, a frame two parts share is cross-faded from the
earlier part to the later over the overlap (every channel: the comp, ``bg`` and the matte),
so no seam shows; the take's proxies and record are written as a normal job's are.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from .. import catalog, engines
from ..errors import InputError, SpecError
from ..media import frames as frames_mod
from ..media import imageio, imagewrite
from ..motion import WITHOUT_PICTURES
from ..progress import ProgressEvent, Reporter, StageClock, null_reporter
from ..spec import ShotSpec


def plan(frame_list: list[int], size: int, overlap: int) -> list[list[int]]:
    """Parts of ``size`` frames, each sharing ``overlap`` frames with the next (the last may
    be shorter, never shorter than ``overlap`` + 1); one part when the shot fits. No frame is
    in more than two parts."""
    if size < 2 or not 0 < overlap <= size // 2:
        raise SpecError(f"--split {size} --split-overlap {overlap}: a part needs at least 2 "
                        "frames and the overlap at least 1 and at most half a part (e.g. "
                        "--split 48 --split-overlap 8)")
    starts = [0]
    while starts[-1] + size < len(frame_list):
        starts.append(starts[-1] + size - overlap)
    return [frame_list[s : s + size] for s in starts]


def check_splittable(spec: ShotSpec, name: str) -> None:
    """SpecError (one line) when ``spec`` cannot be generated in parts that agree."""
    traits = catalog.engine(spec.engine.name)
    if not traits.splittable:
        splittable = [t.name for t in catalog.engines().values() if t.splittable]
        why = "is chunked by frames already: --chunk" if not traits.whole_shot else \
            "cannot generate a part with the whole shot's noise"
        raise SpecError(f"{name}: --split is for the {', '.join(splittable)} engine(s) (the "
                        f"{traits.name} engine {why})")
    if spec.motion.source not in WITHOUT_PICTURES:
        raise SpecError(f"{name}: motion.source {spec.motion.source} needs the whole shot's "
                        "pictures, which a part does not read; write the motion once with "
                        "`actanywhere motion` and export with motion.source file")
    engines.engine_class(spec.engine.name).check_split(spec, name)


def weights(parts: list[list[int]]) -> dict[int, list[tuple[int, float]]]:
    """Frame -> (part index, weight) pairs summing to 1: a linear cross-fade from the earlier
    part to the later over the frames they share."""
    out: dict[int, list[tuple[int, float]]] = {f: [(i, 1.0)] for i in
                                               reversed(range(len(parts))) for f in parts[i]}
    for a in range(len(parts) - 1):
        later = set(parts[a + 1])
        shared = [f for f in parts[a] if f in later]
        for k, f in enumerate(shared, start=1):
            t = k / (len(shared) + 1)
            out[f] = [(a, 1.0 - t), (a + 1, t)]
    return dict(sorted(out.items()))


@dataclass
class Joined:
    written: list[str]
    seconds: float


def part_pattern(parts_dir: str, part: list[int], stem: str) -> str:
    """Where a part's frames are: ``<parts_dir>/<first>-<last>/<stem>.####.exr``."""
    return os.path.join(parts_dir, f"{part[0]}-{part[-1]}", f"{stem}.####.exr")


def join(spec: ShotSpec, parts: list[list[int]], parts_dir: str, stem: str,
         report: Reporter = null_reporter) -> Joined:
    """The take's frames (``spec.output.path``) from its parts' frames, cross-faded where
    they overlap; proxies and ``take.json`` as a job writes them."""
    from ..model import model_hash
    from ..shot.plan import color_context, refuse_over_inputs, spec_inputs
    from ..shot.proxy import TakeProxies

    start = time.monotonic()
    blend = weights(parts)
    out = frames_mod.Sequence(frames_mod.template(spec.output.path), tuple(sorted(blend)))
    seqs = [frames_mod.Sequence(frames_mod.template(part_pattern(parts_dir, p, stem)),
                                tuple(p)) for p in parts]
    missing = [seq.path(f) for seq in seqs for f in seq.frames
               if not os.path.exists(seq.path(f))]
    if missing:
        raise InputError(f"{missing[0]}: missing part frame ({len(missing)} in all); rerun "
                         "that part's task (its frames are written before the join runs)")
    inputs = spec_inputs(spec) | {os.path.realpath(seq.path(f)) for seq in seqs
                                  for f in seq.frames}
    refuse_over_inputs(list(out.paths()), inputs, "the joined take")
    proxies = TakeProxies(spec, color_context(spec.color)) if spec.output.proxy else None
    if proxies is not None:
        refuse_over_inputs(proxies.files(list(blend)), inputs, "a proxy or take record")
    first = imageio.probe(seqs[0].path(parts[0][0])).metadata  # the header: what made it
    if proxies is not None:
        proxies.start(spec, str(first.get("actanywhere:motion", "none")),
                      model_hash(spec.engine.model))
    space = str(first.get("actanywhere:colorspace", ""))
    clock = StageClock(report, "frames", len(blend))
    written: list[str] = []
    try:
        for f in sorted(blend):
            img, pixels = None, None
            for i, w in blend[f]:
                img = imageio.read(seqs[i].path(f), clean=False)
                if pixels is None:
                    pixels = np.zeros_like(img.pixels)
                    names = img.info.channels
                elif img.info.channels != names:
                    raise InputError(f"{seqs[i].path(f)}: channels "
                                     f"{', '.join(img.info.channels)} differ from the other "
                                     "part's; rerun both parts with the same spec")
                pixels += w * img.pixels
            assert img is not None and pixels is not None
            meta = dict(img.info.metadata)
            meta["actanywhere:parts"] = ", ".join(f"{parts[i][0]}-{parts[i][-1]} x {w:.3f}"
                                                  for i, w in blend[f])
            path = out.path(f)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            imagewrite.write_exr(path, names, pixels, img.info.display, meta,
                              spec.output.compression, img.info.pixel_aspect)
            written.append(path)
            if proxies is not None and "R" in names:
                rgb = pixels[..., [names.index(c) for c in ("R", "G", "B")]]
                if space and space != proxies.color.working_space:
                    rgb = proxies.color.to_working(rgb, space)
                proxies.frame(f, rgb)
            clock.advance(f)
    except BaseException as exc:
        if proxies is not None:
            proxies.end("failed", time.monotonic() - start, len(written),
                        (str(exc).splitlines() or [type(exc).__name__])[0])
        raise
    seconds = time.monotonic() - start
    if proxies is not None:
        proxies.end("done", seconds, len(written))
    report(ProgressEvent("done", len(written), len(blend), message=f"joined "
                         f"{len(parts)} part(s) into {len(written)} frame(s) of "
                         f"{out.template} in {seconds:.1f}s"))
    return Joined(written, seconds)
