"""Small helpers shared by the models."""

from __future__ import annotations

import numpy as np

__all__ = ["LOG_TINY", "ComponentShape", "floored_log", "one_hot"]

#: log of the smallest normal float64: the floor of every log-weight, so a zero weight never
#: puts -inf (and 0 * -inf = NaN) into a kernel
_TINY = float(np.finfo(np.float64).tiny)
LOG_TINY = float(np.log(_TINY))


def floored_log(x) -> np.ndarray:
    """``log(x)`` floored at :data:`LOG_TINY` (as ``log(max(x, tiny))``: no log of zero)."""
    return np.log(np.maximum(x, _TINY))


def one_hot(labels, n_components: int, dtype=np.float64) -> np.ndarray:
    """``N x K`` indicator rows; label ``n_components`` means "no component" (a zero row)."""
    out = np.zeros((len(labels), n_components + 1), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return np.ascontiguousarray(out[:, :n_components])


class ComponentShape:
    """``n_components`` and ``n_features`` of a parameter value, from its K x D array named
    by the class attribute ``_by`` (``"means"`` unless a model says otherwise)."""

    _by = "means"

    @property
    def n_components(self) -> int:
        return getattr(self, self._by).shape[0]

    @property
    def n_features(self) -> int:
        return getattr(self, self._by).shape[1]
