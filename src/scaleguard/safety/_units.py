"""Which units a client has seen in a stage: the counts the sample-ratio check tests.

A rollout randomises *units* (users, sessions), not requests, so the split the sample-ratio
check can test is one of units: each unit lands in treatment with the planned probability,
independently of the others, while its requests all share its arm. Counting requests instead
makes a heavy user a cluster of exposures in one arm, and with a fixed population the request
split drifts from the planned one by the units' own luck of the draw, by more and more standard
errors as requests accumulate: the check then fires on a correct split. Kohavi, Tang & Xu,
*Trustworthy Online Controlled Experiments* (2020), ch. 21, and Fabijan et al., "Diagnosing
sample ratio mismatch in online controlled experiments" (KDD 2019) test the split of users for
this reason.

:class:`FirstSeen` answers "is this the unit's first observation of this metric in this
stage?" in fixed memory: a Bloom filter (Bloom 1970) over a digest of (metric, unit), four
probes from disjoint bits of one blake2b digest, cleared when the stage changes. A false
positive (a new unit taken for one seen before) only leaves that unit uncounted; its chance is
the same for either arm (the filter's bits are independent of the bucket that sets the arm), so
the counted units remain a random thinning of the units, and the split they show is still the
planned one when the assignment is right. With the default 8 MiB the chance is about 10^-5 at
one million (metric, unit) pairs a stage, 2 x 10^-4 at two million and 4% at ten million.
Standard library only, like :mod:`scaleguard.safety._assignment`.
"""

from __future__ import annotations

import hashlib

__all__ = ["DEFAULT_FILTER_BYTES", "FirstSeen"]

DEFAULT_FILTER_BYTES = 8 << 20  # 2^26 bits
_POSITION_BITS = 26  # each probe reads 26 bits of one 128-bit digest: four disjoint probes,
# near the optimum ln(2) x bits/key for millions of keys


class FirstSeen:
    """A per-stage set of (metric, unit) pairs, approximate only towards "seen before".

    >>> seen = FirstSeen(size_bytes=1 << 10)
    >>> seen.first("pilot", "harm", "user-1"), seen.first("pilot", "harm", "user-1")
    (True, False)
    >>> seen.first("pilot", "error", "user-1")  # another metric counts the unit again
    True
    >>> seen.first("quarter", "harm", "user-1")  # a new stage starts a new count
    True
    """

    def __init__(self, size_bytes: int = DEFAULT_FILTER_BYTES) -> None:
        if size_bytes < 1 or size_bytes & (size_bytes - 1) or size_bytes > DEFAULT_FILTER_BYTES:
            raise ValueError(f"size_bytes: expected a power of two up to {DEFAULT_FILTER_BYTES},"
                             f" got {size_bytes}")
        self.size_bytes = int(size_bytes)
        self._mask = size_bytes * 8 - 1  # positions are digest bits masked to the filter
        self._bits = bytearray(0)  # allocated at the first unit: a client that never records
        self._stage: str | None = None  # pays nothing

    def first(self, stage: str, metric: str, unit_id: object) -> bool:
        """Whether (``metric``, ``unit_id``) is new in ``stage``; it is marked seen either way."""
        return self.mark(stage, self.key(metric, unit_id))

    @staticmethod
    def key(metric: str, unit_id: object) -> int:
        """The pair's 128-bit digest: the costly half of :meth:`first`, which needs no lock."""
        return int.from_bytes(hashlib.blake2b(f"{metric}\x00{unit_id}".encode(),
                                              digest_size=16).digest(), "big")

    def mark(self, stage: str, h: int) -> bool:
        """:meth:`first` for a :meth:`key` already computed (the caller holds its lock)."""
        if stage != self._stage or not self._bits:
            self._bits = bytearray(self.size_bytes)
            self._stage = stage
        # Unrolled on purpose: record() pays this on the application's path.
        mask, bits = self._mask, self._bits
        p1, p2 = h & mask, (h >> _POSITION_BITS) & mask
        p3, p4 = (h >> 2 * _POSITION_BITS) & mask, (h >> 3 * _POSITION_BITS) & mask
        m1, m2, m3, m4 = 1 << (p1 & 7), 1 << (p2 & 7), 1 << (p3 & 7), 1 << (p4 & 7)
        p1, p2, p3, p4 = p1 >> 3, p2 >> 3, p3 >> 3, p4 >> 3
        seen = bits[p1] & m1 and bits[p2] & m2 and bits[p3] & m3 and bits[p4] & m4
        bits[p1] |= m1
        bits[p2] |= m2
        bits[p3] |= m3
        bits[p4] |= m4
        return not seen
