"""Deterministic hashing helpers: every number the sandbox serves comes from these.

Nothing here holds state, so the world can be generated lazily and in any order: the value for
(seed, ad, day) is the same whether it is computed first or last, in a sync request or in a job.
"""

from __future__ import annotations

import hashlib
import math

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_INV_2_64 = 1.0 / 18446744073709551616.0


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a fast, well-spread 64-bit integer hash."""
    x = (x + _GOLDEN) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def key(*parts: object) -> int:
    """A stable 64-bit key for any tuple of printable parts (slow-ish; use for setup, not per row)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def unit(h: int) -> float:
    """Map a 64-bit hash to [0, 1)."""
    return h * _INV_2_64


def stream(h: int, n: int) -> list[float]:
    """n uniform numbers in [0, 1) derived from one hash."""
    out = []
    for _ in range(n):
        h = mix64(h)
        out.append(h * _INV_2_64)
    return out


def poisson(mean: float, u: float) -> int:
    """Inverse-CDF Poisson draw for small means (the sandbox's counts are small)."""
    if mean <= 0:
        return 0
    p = math.exp(-mean)
    cdf = p
    k = 0
    while u > cdf and k < 1000:
        k += 1
        p *= mean / k
        cdf += p
    return k


def numeric_id(seed: int, *parts: object, digits: int = 15) -> str:
    """A numeric id string that depends only on the seed and the parts (first digit never 0)."""
    h = key(seed, *parts)
    low = 10 ** (digits - 1)
    return str(low + h % (9 * low))


def pick(seq, h: int):
    """Pick one element of a sequence by hash."""
    return seq[h % len(seq)]
