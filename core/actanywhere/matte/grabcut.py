"""GrabCut (OpenCV) as a segmenter: a box (and clicks) on key frames, the warped previous
matte on tracked frames. No model weights; good on subjects that differ in colour from their
surroundings. Runs on a crop around the subject, at most ``work`` pixels on its long side."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..errors import InputError
from ..progress import Reporter
from .source import TrackedSource
from .track import Hint, KeyFrame


class GrabCut:
    name = "grabcut"

    def __init__(self, image: Callable[[int], np.ndarray], work: int = 640,
                 iterations: int = 4) -> None:
        self.image = image
        self.work = work
        self.iterations = iterations

    def _run(self, rgb8: np.ndarray, init: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
        h, w = init.shape
        x0, y0, x1, y1 = box
        pad = 0.15 * max(x1 - x0, y1 - y0)
        cx0, cy0 = max(0, int(x0 - pad)), max(0, int(y0 - pad))
        cx1, cy1 = min(w, int(np.ceil(x1 + pad))), min(h, int(np.ceil(y1 + pad)))
        crop = rgb8[cy0:cy1, cx0:cx1]
        lab = init[cy0:cy1, cx0:cx1]
        ch, cw = lab.shape
        s = min(1.0, self.work / max(ch, cw))
        sw, sh = max(1, round(cw * s)), max(1, round(ch * s))
        small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA) if s < 1 else crop
        small_lab = cv2.resize(lab, (sw, sh), interpolation=cv2.INTER_NEAREST) if s < 1 else lab
        small_lab = np.ascontiguousarray(small_lab)
        if not np.isin(small_lab, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
            return np.zeros((h, w), np.float32)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # its k-means starts from OpenCV's RNG: the same matte on every run
        cv2.grabCut(np.ascontiguousarray(cv2.cvtColor(small, cv2.COLOR_RGB2BGR)), small_lab,
                    None, bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)
        fg = np.isin(small_lab, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
        out = np.zeros((h, w), np.float32)
        out[cy0:cy1, cx0:cx1] = cv2.resize(fg, (cw, ch), interpolation=cv2.INTER_LINEAR) \
            if s < 1 else fg
        return out

    def key(self, index: int, key: KeyFrame) -> np.ndarray:
        rgb8 = self.image(index)
        h, w = rgb8.shape[:2]
        if not key.boxes:
            raise InputError(f"matte.keys: key frame {key.frame}: grabcut needs a box around the "
                             "subject (points alone are not enough); add a box")
        out = np.zeros((h, w), np.float32)
        for box in key.boxes:
            init = np.full((h, w), cv2.GC_BGD, np.uint8)
            x0, y0, x1, y1 = (round(v) for v in box)
            init[max(0, y0):y1, max(0, x0):x1] = cv2.GC_PR_FGD
            r = max(2, round(0.01 * max(h, w)))
            for x, y, label in key.points:
                cv2.circle(init, (round(x), round(y)), r,
                           int(cv2.GC_FGD if label else cv2.GC_BGD), -1)
            out = np.maximum(out, self._run(rgb8, init, box))
        return out

    def track(self, index: int, hint: Hint) -> np.ndarray:
        """Definite subject: the warped matte's core; probable subject: the warped matte;
        probable background: the rest of its box grown by 15% (limbs that moved off the warped
        matte can come back); definite background: outside that."""
        rgb8 = self.image(index)
        solid = (hint.warped > 0.5).astype(np.uint8)
        h, w = solid.shape
        x0, y0, x1, y1 = hint.box
        size = max(x1 - x0, y1 - y0)
        thick = float(cv2.distanceTransform(solid, cv2.DIST_L2, 3).max())
        r = max(1, round(min(0.5 * thick, 0.08 * size)))
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        init = np.full(solid.shape, cv2.GC_BGD, np.uint8)
        pad = 0.15 * size
        init[max(0, int(y0 - pad)):min(h, int(y1 + pad)),
             max(0, int(x0 - pad)):min(w, int(x1 + pad))] = cv2.GC_PR_BGD
        init[solid > 0] = cv2.GC_PR_FGD
        init[cv2.erode(solid, k) > 0] = cv2.GC_FGD
        return self._run(rgb8, init, (x0 - pad, y0 - pad, x1 + pad, y1 + pad))


class GrabCutSource(TrackedSource):
    def segmenter(self, image: Callable[[int], np.ndarray], count: int,
                  report: Reporter) -> GrabCut:
        return GrabCut(image)
