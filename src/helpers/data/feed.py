"""Feeding Keras: mini-batches of dense float32, sparse rows densified one batch at a time."""
from __future__ import annotations

import functools
import math

import numpy as np
import scipy.sparse as sp


class Batches:
    """Mini-batches of (x, y), or x alone when y is None, as dense float32; sparse rows are
    densified one batch at a time. With shuffle, each epoch has a fresh seeded order."""

    def __init__(self, x, y=None, *, batch_size: int, shuffle: bool = False, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n = x.shape[0]
        if y is not None and len(y) != self.n:
            raise ValueError(f"x has {self.n} samples but y has {len(y)}")
        self.x = x.tocsr() if sp.issparse(x) else x
        self.y, self.batch_size, self.shuffle = y, batch_size, shuffle
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(self.n) if shuffle else None

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range 0..{len(self) - 1}")
        rows = slice(i * self.batch_size, min(self.n, (i + 1) * self.batch_size))
        if self._order is not None:
            rows = self._order[rows]
        xb = self.x[rows]
        if sp.issparse(xb):
            xb.sum_duplicates()
            dense = np.zeros(xb.shape, dtype=np.float32)
            dense[np.repeat(np.arange(xb.shape[0]), np.diff(xb.indptr)), xb.indices] = xb.data
            xb = dense
        else:
            xb = np.asarray(xb, dtype=np.float32)
        return xb if self.y is None else (xb, self.y[rows])

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(self.n)


@functools.cache
def _feed_class():
    import keras

    class Feed(Batches, keras.utils.PyDataset):
        def __init__(self, x, y=None, *, batch_size, shuffle=False, seed=0):
            keras.utils.PyDataset.__init__(self)
            Batches.__init__(self, x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)

    Feed.__name__ = Feed.__qualname__ = "Feed"
    return Feed


def feed(x, y=None, *, batch_size: int, shuffle: bool = False, seed: int = 0):
    """A keras.utils.PyDataset of dense float32 batches for model.fit/evaluate/predict(feed(...)).
    y is passed through as given (one-hot or 0/1 float32); None for predict."""
    return _feed_class()(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)
