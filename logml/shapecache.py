"""Shape cache: 64-bit line-shape hash to template index, an open-addressing table in numba.

A shape seen before is answered here for a whole batch in one call and never walks the
Drain tree again. ``lookup_reference`` is the plain-Python specification the tests use.
"""
from __future__ import annotations

import numba as nb
import numpy as np

EMPTY = np.uint64(0)
# explicit signatures: compiled once, the same cache entry for every caller
_KEYS, _VALUES = nb.types.uint64[::1], nb.types.int32[::1]
_QUERIES = nb.types.Array(nb.types.uint64, 1, "A", readonly=True)


@nb.njit(nb.types.int64(_KEYS, nb.types.uint64), cache=True)
def _slot(keys, key):
    """Slot of key, or the empty slot where it goes (one signature: tables are contiguous)."""
    mask = keys.shape[0] - 1
    i = np.int64(key & np.uint64(mask))
    while keys[i] != EMPTY and keys[i] != key:
        i = (i + 1) & mask
    return i


@nb.njit(nb.types.int32[::1](_KEYS, _VALUES, _QUERIES), cache=True)
def lookup(keys, values, queries):
    """values[slot(q)] for each query, -1 where the shape is not cached."""
    out = np.empty(queries.shape[0], dtype=np.int32)
    for k in range(queries.shape[0]):
        q = queries[k] | np.uint64(1)
        i = _slot(keys, q)
        out[k] = values[i] if keys[i] == q else -1
    return out


@nb.njit(cache=True)
def insert(keys, values, key, value):
    key = key | np.uint64(1)
    i = _slot(keys, key)
    new = keys[i] == EMPTY
    keys[i] = key
    values[i] = value
    return new


@nb.njit(nb.types.int64(_KEYS, _VALUES, _QUERIES,
                        nb.types.Array(nb.types.int32, 1, "A", readonly=True)), cache=True)
def insert_all(keys, values, new_keys, new_values):
    """insert of each (key, value) pair, in order; how many keys were new."""
    added = 0
    for k in range(new_keys.shape[0]):
        added += insert(keys, values, new_keys[k], new_values[k])
    return added


def lookup_reference(table: dict, queries: np.ndarray) -> np.ndarray:
    return np.array([table.get(int(q) | 1, -1) for q in queries], dtype=np.int32)


class ShapeCache:
    """Bounded map of shape hash to template index; cleared when full (it is only a cache).

    Memory: 12 bytes a slot, at most half the slots used, so about 24 bytes a cached shape.
    """

    def __init__(self, max_entries: int = 1_000_000, capacity: int = 1 << 12):
        self.max_entries = max_entries
        self._reset(capacity)

    def _reset(self, capacity: int):
        self.keys = np.zeros(capacity, dtype=np.uint64)
        self.values = np.full(capacity, -1, dtype=np.int32)
        self.size = 0

    def __len__(self):
        return self.size

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.values.nbytes

    def lookup(self, queries: np.ndarray) -> np.ndarray:
        return lookup(self.keys, self.values, queries)

    def insert(self, key: int, value: int):
        if self.size >= self.max_entries:
            self._reset(self.keys.shape[0])
        if (self.size + 1) * 2 > self.keys.shape[0]:
            self._grow()
        # through insert_all: one entry point for both (each costs compile and load time)
        self.size += insert_all(self.keys, self.values, np.array([key], dtype=np.uint64),
                                np.array([value], dtype=np.int32))

    def reserve(self, n: int) -> int:
        """Room for n more shapes (a batch's new ones, inserted by a kernel): cleared first
        when they would not all fit under max_entries, grown so that at most half the slots
        are used; how many may be inserted."""
        if self.size + n > self.max_entries:
            self._reset(self.keys.shape[0])
        room = min(n, self.max_entries - self.size)
        while (self.size + room) * 2 > self.keys.shape[0]:
            self._grow()
        return room

    def _grow(self):
        old_keys, old_values = self.keys, self.values
        used = old_keys != EMPTY
        self._reset(old_keys.shape[0] * 2)
        self.size = insert_all(self.keys, self.values, old_keys[used], old_values[used])

    def state(self) -> dict:
        """The cached (key, template index) pairs; the size bound is config, not state."""
        used = self.keys != EMPTY
        return {"keys": self.keys[used], "values": self.values[used]}

    @classmethod
    def from_state(cls, state: dict, max_entries: int = 1_000_000) -> "ShapeCache":
        """The cache of a saved state; empty when it holds more than max_entries now
        allows (it is only a cache). Keys must be distinct and odd, as stored."""
        keys, values = state["keys"], state["values"]
        if not (isinstance(keys, np.ndarray) and keys.dtype == np.uint64 and keys.ndim == 1
                and isinstance(values, np.ndarray) and values.dtype == np.int32
                and values.shape == keys.shape and bool(np.all(keys & np.uint64(1)))
                and bool(np.all(values >= 0)) and len(np.unique(keys)) == len(keys)):
            raise ValueError("shape cache: keys must be distinct odd uint64, values int32 >= 0")
        n = len(keys)
        if n > max_entries:
            return cls(max_entries)
        cache = cls(max_entries, 1 << max(12, int(2 * n + 1).bit_length()))
        insert_all(cache.keys, cache.values, keys, values)
        cache.size = n
        return cache
