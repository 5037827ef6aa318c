"""Whose key is calling, asked of Postgres once per key and process, not once
per request: principals are kept in the gateway's memory, and a revocation
is heard through Redis at every request.

Whoever revokes a key (the API, `paystream keys`, `paystream operators`)
sets the Redis key `keys:revoked` to a new random token once the revocation
is committed. Every request reads that token in the Redis round trip that
counts its rate (one script), and a token other than the one the cache was
filled under empties the cache before it answers: a key revoked through any
process is refused by every other at its next request.

- Only keys found in Postgres are kept, by the HMAC of the key (never the
  key); a principal carries its one owner, so no entry answers for a key of
  another merchant, or for a key it was not found under.
- An entry is kept at most `ENTRY_SECONDS`, and never past the end of a
  rotation's grace: a bound for a revocation whose announcement was lost.
- With Redis away nothing is cached or served from the cache: a revocation
  could not be heard. Every request asks Postgres, as before the cache.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.exceptions import RedisError

from store.db import connection
from store.keys import Principal
from store.keys import find_principal
from store.keys import hash_key

logger = logging.getLogger("paystream.gateway.principals")

REVOCATIONS = "keys:revoked"
# The longest a revocation can go unheard when its announcement was lost
# (Redis away at the revoker, not at the gateway): a minute, as long as a
# rate-limit window is short and an operator would wait for a key to die.
ENTRY_SECONDS = 60.0
# Keys are few (a merchant has a handful); past this, start again.
MAX_ENTRIES = 10_000

# One round trip per request: the revocation token, and the key's count in
# its one-second window when there is a rate limit.
_HEAR = """
local token = redis.call('GET', KEYS[1]) or ''
if #KEYS < 2 then return {token, 0} end
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('PEXPIRE', KEYS[2], 2000) end
return {token, n}
"""


def revocation_token() -> str:
    """A new value for `REVOCATIONS`: unlike any before, even after a flush."""
    return secrets.token_hex(16)


async def announce_revocation(redis: Redis) -> None:
    """Tell every gateway process that a key was revoked (after the commit)."""
    try:
        await redis.set(REVOCATIONS, revocation_token())
    except RedisError as error:
        logger.warning(
            "a key revocation could not be announced; caches drop it within %.0f s: %s",
            ENTRY_SECONDS,
            error,
        )


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request's key: who it is (None: unknown or revoked), and how many
    requests it made in this second (0 when not counted)."""

    principal: Principal | None
    count: int


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    until: float  # time.time() past which the entry is not used


class Principals:
    def __init__(
        self,
        redis: Redis,
        pool: AsyncConnectionPool[Any],
        pepper: bytes,
        *,
        per_second: int,
    ) -> None:
        self._pool, self._pepper, self._per_second = pool, pepper, per_second
        self._hear = redis.register_script(_HEAR)
        self._entries: dict[bytes, _Entry] = {}
        self._token: bytes | None = None  # what the entries were found under

    async def admit(self, key: str) -> Admitted:
        digest = hash_key(key, self._pepper)
        now = time.time()
        entry = self._entries.get(digest)
        if entry is not None and entry.until <= now:
            entry = None
        heard = await self._heard(entry.principal.key_id if entry else None, now)
        if heard is None:
            self._entries.clear()
            return Admitted(await self._find(digest), 0)
        token, count = heard
        if token != self._token:
            self._entries.clear()
            self._token, entry = token, None
        if entry is not None:
            return Admitted(entry.principal, count)
        principal = await self._find(digest)
        if principal is not None and self._token == token:
            self._remember(digest, principal, now)
        if principal is not None and self._per_second:
            heard = await self._heard(principal.key_id, now)
            count = heard[1] if heard else 0
        return Admitted(principal, count)

    def holds(self, key: str) -> bool:
        """Whether the key's principal is kept here now (for tests)."""
        return hash_key(key, self._pepper) in self._entries

    async def _heard(self, key_id: str | None, now: float) -> tuple[bytes, int] | None:
        """The revocation token and the key's count; None with Redis away."""
        keys = [REVOCATIONS]
        if key_id is not None and self._per_second:
            keys.append(f"rate:{key_id}:{int(now)}")
        try:
            token, count = await self._hear(keys=keys)
        except RedisError:
            return None
        return bytes(token), int(count)

    async def _find(self, digest: bytes) -> Principal | None:
        async with connection(self._pool) as conn:
            return await find_principal(conn, digest)

    def _remember(self, digest: bytes, principal: Principal, now: float) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        until = now + ENTRY_SECONDS
        if principal.ends_at is not None:
            until = min(until, principal.ends_at.timestamp())
        self._entries[digest] = _Entry(principal, until)
