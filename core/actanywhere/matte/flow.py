"""Optical flow (OpenCV) and matte warping between frames of a shot."""

from __future__ import annotations

import cv2
import numpy as np


class Flow:
    """Dense flow at a reduced working size; warps full-resolution mattes."""

    def __init__(self, method: str = "dis", long_side: int = 1024) -> None:
        self.method = method
        self.long_side = long_side
        self._dis = None
        if method == "dis":
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def small_gray(self, rgb8: np.ndarray) -> np.ndarray:
        """The frame (uint8 RGB, display-referred) as gray at the working size."""
        gray = cv2.cvtColor(np.ascontiguousarray(rgb8), cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        s = min(1.0, self.long_side / max(h, w))
        if s < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))),
                              interpolation=cv2.INTER_AREA)
        return gray

    def backward(self, dst_small: np.ndarray, src_small: np.ndarray) -> np.ndarray:
        """For every pixel of ``dst``, where it was in ``src`` (offset, working-size pixels)."""
        if self._dis is not None:
            return self._dis.calc(dst_small, src_small, None)
        return cv2.calcOpticalFlowFarneback(dst_small, src_small, None, 0.5, 4, 21, 5, 7, 1.5,
                                            cv2.OPTFLOW_FARNEBACK_GAUSSIAN)

    @staticmethod
    def warp(src_matte: np.ndarray, flow_small: np.ndarray) -> np.ndarray:
        """Pull ``src_matte`` (full size) into the destination frame along ``flow_small``."""
        h, w = src_matte.shape
        fh, fw = flow_small.shape[:2]
        flow = cv2.resize(flow_small, (w, h), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= w / fw
        flow[..., 1] *= h / fh
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        return cv2.remap(np.ascontiguousarray(src_matte, np.float32), gx + flow[..., 0],
                         gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0.0)
