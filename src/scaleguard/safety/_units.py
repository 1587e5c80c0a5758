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
stage?" in fixed memory: a Bloom filter (Bloom 1970) over a digest of (metric, unit), cleared
when the stage changes. A false positive (a new unit taken for one seen before) only leaves that
unit uncounted; its chance is the same for either arm (the filter's bits are independent of the
bucket that sets the arm), so the counted units remain a random thinning of the units, and the
split they show is still the planned one when the assignment is right. With the default 8 MiB
the chance is about 10^-5 at one million (metric, unit) pairs a stage, 2 x 10^-4 at two
million and 4% at ten million. Standard library only, like :mod:`scaleguard.safety._assignment`.
"""

from __future__ import annotations

import hashlib

__all__ = ["DEFAULT_FILTER_BYTES", "FirstSeen"]

DEFAULT_FILTER_BYTES = 8 << 20  # 64 Mi bits
_PROBES = 4  # bit positions per key: near the optimum ln(2) x bits/key for millions of keys


class FirstSeen:
    """A per-stage set of (metric, unit) pairs, approximate only towards "seen before".

    >>> seen = FirstSeen(size_bytes=1024)
    >>> seen.first("pilot", "harm", "user-1"), seen.first("pilot", "harm", "user-1")
    (True, False)
    >>> seen.first("pilot", "error", "user-1")  # another metric counts the unit again
    True
    >>> seen.first("quarter", "harm", "user-1")  # a new stage starts a new count
    True
    """

    def __init__(self, size_bytes: int = DEFAULT_FILTER_BYTES) -> None:
        if size_bytes < 1:
            raise ValueError(f"size_bytes: expected at least 1, got {size_bytes}")
        self.size_bytes = int(size_bytes)
        self._bits = bytearray(0)  # allocated at the first unit: a client that never records
        self._stage: str | None = None  # pays nothing

    def first(self, stage: str, metric: str, unit_id: object) -> bool:
        """Whether (``metric``, ``unit_id``) is new in ``stage``; it is marked seen either way."""
        if stage != self._stage or not self._bits:
            self._bits = bytearray(self.size_bytes)
            self._stage = stage
        digest = hashlib.blake2b(f"{metric}\x00{unit_id}".encode(), digest_size=16).digest()
        # Double hashing (Kirsch & Mitzenmacher 2006): probe i at h1 + i*h2 mod the bit count.
        h1 = int.from_bytes(digest[:8], "big")
        h2 = int.from_bytes(digest[8:], "big") | 1
        bits = self._bits
        size = len(bits) * 8
        new = False
        for i in range(_PROBES):
            position = (h1 + i * h2) % size
            mask = 1 << (position & 7)
            byte = position >> 3
            if not bits[byte] & mask:
                bits[byte] |= mask
                new = True
        return new
