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
    """A power of two above 4/3 of the keys: probes stay short and the table small."""
    cdef int64_t size = 16
    while 3 * size < 4 * keys:
        size *= 2
    return size


ctypedef struct TextSlot:
    uint64_t head[2]  # the first 16 bytes, zero-padded: shorter ids compare here alone
    int32_t position  # -1: empty
    int32_t length


cdef inline uint64_t _low_bytes(uint64_t word, int64_t count) noexcept nogil:
    """The first `count` bytes of a little-endian word (count <= 0: none)."""
    if count >= 8:
        return word
    if count <= 0:
        return 0
    return word & ((<uint64_t>1 << (8 * count)) - 1)


cdef inline uint64_t _text_hash(const uint8_t *text, int64_t length, const uint8_t *end,
                                uint64_t *head) noexcept nogil:
    """The id's first 16 bytes (zero-padded) into head, and its hash."""
    cdef uint64_t words[2]
    if text + 16 <= end:  # a fixed-size load (inlined), then the bytes past the id masked off
        memcpy(words, text, 16)
    else:
        words[0] = 0
        words[1] = 0
        memcpy(words, text, length if length < 16 else 16)
    head[0] = _low_bytes(words[0], length)
    head[1] = _low_bytes(words[1], length - 8)
    cdef uint64_t h = (head[0] * _MUL) ^ (head[1] * 0xC2B2AE3D27D4EB4FULL) ^ <uint64_t>length
    if length > 16:
        h ^= _hash_bytes(text + 16, length - 16)
    return _mix(h)


cdef class TextIndex:
    """The registry's text ids: position of each text id, -1 when absent.

    A slot holds the id's length and first 16 bytes: an id of up to 16
    bytes is found with one memory access, a longer one is then compared
    with the registry's bytes."""

    cdef object _offsets, _data, _slots  # owners of the buffers below
    cdef const int32_t[::1] offsets
    cdef const uint8_t[::1] data
    cdef TextSlot *slots
    cdef uint64_t mask

    def __init__(self, offsets, data):
        """`offsets` (int32, n + 1) and `data` (uint8) of n distinct strings."""
        self._offsets, self._data = offsets, data
        self.offsets, self.data = offsets, data
        cdef int64_t n = len(offsets) - 1, size = _slot_count(n)
        self._slots = np.zeros(size * sizeof(TextSlot), dtype=np.uint8)
        cdef uint8_t[::1] raw = self._slots
        self.slots = <TextSlot *>&raw[0]
        self.mask = size - 1
        cdef int64_t i, length
        cdef uint64_t h, slot
        cdef uint64_t head[2]
        cdef const uint8_t *mine = &self.data[0]
        cdef const uint8_t *end = mine + self.data.shape[0]
        with nogil:
            for i in range(size):
                self.slots[i].position = -1
            for i in range(n):
                length = self.offsets[i + 1] - self.offsets[i]
                h = _text_hash(mine + self.offsets[i], length, end, head)
                slot = h & self.mask
                while self.slots[slot].position != -1:
                    slot = (slot + 1) & self.mask
                self.slots[slot].position = <int32_t>i
                self.slots[slot].length = <int32_t>length
                self.slots[slot].head[0] = head[0]
                self.slots[slot].head[1] = head[1]

    def lookup(self, const int32_t[::1] offsets, const uint8_t[::1] data, int32_t[::1] out):
        """out[i] = registry position of string i (offsets has len(out) + 1 entries)."""
        cdef int64_t i, n = out.shape[0], length
        cdef const uint8_t *base = &data[0]
        cdef const uint8_t *end = base + data.shape[0]
        cdef const uint8_t *mine = &self.data[0]
        cdef const uint8_t *text
        cdef uint64_t h, slot
        cdef uint64_t head[2]
        cdef TextSlot *entry
        cdef int32_t j
        with nogil:
            for i in range(n):
                length = offsets[i + 1] - offsets[i]
                text = base + offsets[i]
                h = _text_hash(text, length, end, head)
                slot = h & self.mask
                while True:
                    entry = &self.slots[slot]
                    j = entry.position
                    if j == -1:
                        break
                    if entry.head[0] == head[0] and entry.head[1] == head[1] and entry.length == length and (
                            length <= 16 or memcmp(mine + self.offsets[j] + 16, text + 16, length - 16) == 0):
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


def dense_lookup(const int64_t[::1] values, int64_t low, const int32_t[::1] table, int32_t[::1] out):
    """out[i] = table[values[i] - low], the table's last slot (-1) for any
    value outside [low, low + len(table) - 1): a direct table of dense ids."""
    cdef int64_t i, n = out.shape[0]
    cdef uint64_t offset, span = table.shape[0] - 1
    with nogil:
        for i in range(n):
            offset = <uint64_t>values[i] - <uint64_t>low  # modular: ids below low wrap past span
            out[i] = table[offset if offset < span else span]
