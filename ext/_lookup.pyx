# Meter-id hash indexes: built once per registry, probed per batch in C.
#
# Open addressing with linear probing over a power-of-two slot table of at
# least twice the keys; a slot holds a registry position (-1: empty). Text
# keys are Arrow string layouts (int32 offsets into a byte buffer) and are
# compared by their 64-bit hash first, then byte for byte. The caller
# (rating/meter_lookup.py) hands in validated Arrow buffers and masks nulls.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcmp, memcpy

import numpy as np

cdef uint64_t _MUL = 0x9E3779B97F4A7C15ULL


cdef inline uint64_t _mix(uint64_t h) noexcept nogil:
    h ^= h >> 33
    h *= 0xFF51AFD7ED558CCDULL
    h ^= h >> 33
    h *= 0xC4CEB9FE1A85EC53ULL
    h ^= h >> 33
    return h


cdef inline uint64_t _hash_bytes(const uint8_t *data, int64_t n) noexcept nogil:
    cdef uint64_t h = <uint64_t>n * _MUL
    cdef uint64_t word
    while n >= 8:
        memcpy(&word, data, 8)
        h = (h ^ word) * _MUL
        h ^= h >> 29
        data += 8
        n -= 8
    if n > 0:
        word = 0
        memcpy(&word, data, n)
        h = (h ^ word) * _MUL
    return _mix(h)


cdef int64_t _slot_count(int64_t keys):
    cdef int64_t size = 16
    while size < 2 * keys:
        size *= 2
    return size


cdef class TextIndex:
    """The registry's text ids: position of each text id, -1 when absent."""

    cdef object _offsets, _data, _hashes, _slots  # owners of the buffers below
    cdef const int32_t[::1] offsets
    cdef const uint8_t[::1] data
    cdef uint64_t[::1] hashes
    cdef int32_t[::1] slots
    cdef uint64_t mask

    def __init__(self, offsets, data):
        """`offsets` (int32, n + 1) and `data` (uint8) of n distinct strings."""
        self._offsets, self._data = offsets, data
        self.offsets, self.data = offsets, data
        cdef int64_t n = len(offsets) - 1
        self._hashes = np.empty(n, dtype=np.uint64)
        self._slots = np.full(_slot_count(n), -1, dtype=np.int32)
        self.hashes, self.slots = self._hashes, self._slots
        self.mask = len(self._slots) - 1
        cdef int64_t i
        cdef uint64_t h, slot
        cdef const uint8_t *mine = &self.data[0] if self.data.shape[0] else NULL
        with nogil:
            for i in range(n):
                h = _hash_bytes(mine + self.offsets[i], self.offsets[i + 1] - self.offsets[i])
                self.hashes[i] = h
                slot = h & self.mask
                while self.slots[slot] != -1:
                    slot = (slot + 1) & self.mask
                self.slots[slot] = <int32_t>i

    def lookup(self, const int32_t[::1] offsets, const uint8_t[::1] data, int32_t[::1] out):
        """out[i] = registry position of string i (offsets has len(out) + 1 entries)."""
        cdef int64_t i, n = out.shape[0], length
        cdef const uint8_t *base = &data[0] if data.shape[0] else NULL
        cdef const uint8_t *mine = &self.data[0] if self.data.shape[0] else NULL
        cdef const uint8_t *text
        cdef uint64_t h, slot
        cdef int32_t j
        with nogil:
            for i in range(n):
                length = offsets[i + 1] - offsets[i]
                text = base + offsets[i]
                h = _hash_bytes(text, length)
                slot = h & self.mask
                while True:
                    j = self.slots[slot]
                    if j == -1:
                        break
                    if self.hashes[j] == h and self.offsets[j + 1] - self.offsets[j] == length and (
                            length == 0 or memcmp(mine + self.offsets[j], text, length) == 0):
                        break
                    slot = (slot + 1) & self.mask
                out[i] = j


cdef class IntIndex:
    """The registry's integer ids: position of each int64 id, -1 when absent."""

    cdef object _keys, _slots
    cdef const int64_t[::1] keys
    cdef int32_t[::1] slots
    cdef uint64_t mask

    def __init__(self, keys):
        """`keys`: int64, distinct."""
        self._keys = keys
        self.keys = keys
        cdef int64_t n = len(keys)
        self._slots = np.full(_slot_count(n), -1, dtype=np.int32)
        self.slots = self._slots
        self.mask = len(self._slots) - 1
        cdef int64_t i
        cdef uint64_t slot
        with nogil:
            for i in range(n):
                slot = _mix(<uint64_t>self.keys[i]) & self.mask
                while self.slots[slot] != -1:
                    slot = (slot + 1) & self.mask
                self.slots[slot] = <int32_t>i

    def lookup(self, const int64_t[::1] values, int32_t[::1] out):
        """out[i] = registry position of values[i]."""
        cdef int64_t i, n = out.shape[0]
        cdef uint64_t slot
        cdef int32_t j
        with nogil:
            for i in range(n):
                slot = _mix(<uint64_t>values[i]) & self.mask
                while True:
                    j = self.slots[slot]
                    if j == -1 or self.keys[j] == values[i]:
                        break
                    slot = (slot + 1) & self.mask
                out[i] = j
