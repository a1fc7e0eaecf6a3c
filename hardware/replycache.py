"""The exactly-once reply cache, per client identity, bounded in count, bytes, age and clients.

A retried command id is answered with its first reply and never executed again, as long as
the reply is remembered.  Each client identity (its CURVE key; without keys, its connection's
ZeroMQ routing id) has its own cache, so another client's traffic cannot evict it: a client
loses a reply only to its own newer replies (beyond ``per_client`` replies or
``client_bytes`` bytes), to age (``age`` seconds), or when more than ``clients`` identities
were heard since it last was (least recently heard first; the lease holder never).
Read-only operations are not cached at all (the server answers them fresh).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass
class _ClientReplies:
    replies: collections.OrderedDict[int, tuple[float, bytes]] = field(default_factory=collections.OrderedDict)
    size: int = 0


class ReplyCache:
    def __init__(self, per_client: int, client_bytes: int, age: float, clients: int) -> None:
        self.per_client = per_client
        self.client_bytes = client_bytes
        self.age = age
        self.clients = clients
        self.protected: str | None = None  # the lease holder's identity: never forgotten for others
        self._by_client: collections.OrderedDict[str, _ClientReplies] = collections.OrderedDict()

    def get(self, client: str, rid: int, now: float) -> bytes | None:
        c = self._by_client.get(client)
        if c is None:
            return None
        self._expire(c, now)
        hit = c.replies.get(rid)
        return hit[1] if hit is not None else None

    def put(self, client: str, rid: int, data: bytes, now: float) -> None:
        c = self._by_client.get(client)
        if c is None:
            c = self._by_client[client] = _ClientReplies()
        self._by_client.move_to_end(client)
        old = c.replies.pop(rid, None)
        if old is not None:
            c.size -= len(old[1])
        c.replies[rid] = (now, data)
        c.size += len(data)
        self._expire(c, now)
        while len(c.replies) > self.per_client or (c.size > self.client_bytes and len(c.replies) > 1):
            _, (_, gone) = c.replies.popitem(last=False)
            c.size -= len(gone)
        self._forget_clients()

    def expire(self, now: float) -> None:
        """Drop replies older than ``age`` from every client (and clients left with none)."""
        for client in list(self._by_client):
            c = self._by_client[client]
            self._expire(c, now)
            if not c.replies:
                del self._by_client[client]

    def _expire(self, c: _ClientReplies, now: float) -> None:
        while c.replies:
            rid, (t, data) = next(iter(c.replies.items()))
            if now - t <= self.age:
                break
            del c.replies[rid]
            c.size -= len(data)

    def _forget_clients(self) -> None:
        while len(self._by_client) > self.clients:
            for client in self._by_client:  # least recently heard first
                if client != self.protected:
                    del self._by_client[client]
                    break
            else:
                return

    def __len__(self) -> int:
        return sum(len(c.replies) for c in self._by_client.values())

    def client_count(self) -> int:
        return len(self._by_client)
