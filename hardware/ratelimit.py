"""Per-client request rate limit: a token bucket per client identity, bounded in clients.

A request costs one token plus one per KiB, so a client that sends megabyte frames is held
to a byte rate as well as a request rate.  Clients are forgotten least recently heard first
(a forgotten client starts again with a full bucket: forgetting never refuses anyone).
"""

from __future__ import annotations

import collections

MAX_TRACKED = 1024  # client identities with a bucket


def cost(size: int) -> float:
    """Tokens a request of ``size`` bytes costs."""
    return 1.0 + size / 1024.0


class RateLimiter:
    def __init__(self, rate: float, burst: float, max_clients: int = MAX_TRACKED) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def allow(self, client: str, now: float, tokens: float = 1.0) -> bool:
        """Take ``tokens`` from ``client``'s bucket; False (and nothing taken) if it holds fewer."""
        level, last = self._buckets.pop(client, (self.burst, now))
        # requests are not always judged in arrival order (a stop read later goes first): time
        # never runs backwards for a bucket
        level = min(self.burst, level + max(0.0, now - last) * self.rate)
        ok = level >= tokens
        if ok:
            level -= tokens
        self._buckets[client] = (level, max(now, last))
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return ok
