"""A constant-velocity Kalman filter for one box (centre, width, height and their velocities).

The noise model is ByteTrack's (and DeepSORT's): standard deviations proportional to the box size, so
a large, near face may move more pixels per frame than a small, far one.
"""

from __future__ import annotations

import numpy as np

_STD_POSITION = 1.0 / 20.0
_STD_VELOCITY = 1.0 / 160.0

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)  # position += velocity (one frame)
_H = np.eye(4, 8)


def box_to_z(box: np.ndarray) -> np.ndarray:
    """(x1, y1, x2, y2) -> (cx, cy, w, h)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 1.0), max(y2 - y1, 1.0)])


def z_to_box(z: np.ndarray) -> np.ndarray:
    cx, cy, w, h = (float(v) for v in z[:4])
    w, h = max(w, 1.0), max(h, 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


class BoxKalman:
    """State (cx, cy, w, h, vcx, vcy, vw, vh), measurements (cx, cy, w, h), one step per frame."""

    def __init__(self, box: np.ndarray) -> None:
        z = box_to_z(box)
        w, h = z[2], z[3]
        self.mean = np.concatenate([z, np.zeros(4)])
        std = np.array([2 * _STD_POSITION * w, 2 * _STD_POSITION * h, 2 * _STD_POSITION * w, 2 * _STD_POSITION * h,
                        10 * _STD_VELOCITY * w, 10 * _STD_VELOCITY * h, 10 * _STD_VELOCITY * w,
                        10 * _STD_VELOCITY * h])
        self.cov = np.diag(std**2)

    @property
    def box(self) -> np.ndarray:
        return z_to_box(self.mean)

    def predict(self) -> None:
        w, h = max(self.mean[2], 1.0), max(self.mean[3], 1.0)
        q = np.array([_STD_POSITION * w, _STD_POSITION * h, _STD_POSITION * w, _STD_POSITION * h,
                      _STD_VELOCITY * w, _STD_VELOCITY * h, _STD_VELOCITY * w, _STD_VELOCITY * h])
        self.mean = _F @ self.mean
        self.cov = _F @ self.cov @ _F.T + np.diag(q**2)

    def update(self, box: np.ndarray) -> None:
        z = box_to_z(box)
        w, h = max(self.mean[2], 1.0), max(self.mean[3], 1.0)
        r = np.diag(np.array([_STD_POSITION * w, _STD_POSITION * h, _STD_POSITION * w, _STD_POSITION * h]) ** 2)
        s = _H @ self.cov @ _H.T + r
        gain = np.linalg.solve(s, _H @ self.cov).T  # cov H^T S^-1 (S and cov are symmetric)
        self.mean = self.mean + gain @ (z - _H @ self.mean)
        self.cov = (np.eye(8) - gain @ _H) @ self.cov
