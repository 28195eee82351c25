"""Fetching a list from its provider: an HTTP GET whose body is one entry per line."""

from __future__ import annotations

import aiohttp

# A list larger than this is refused rather than read into memory whole.
MAX_LIST_BYTES = 64 * 1024 * 1024


class FetchError(Exception):
    """The provider could not be reached or answered something other than a list."""


async def fetch_list(session: aiohttp.ClientSession, url: str, *, timeout: float) -> bytes:
    """The provider's body, bounded in time and size; FetchError on any failure."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status != 200:
                raise FetchError(f"could not fetch list from {url}: HTTP {response.status}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_LIST_BYTES:
                    raise FetchError(f"list from {url} is larger than {MAX_LIST_BYTES} bytes")
            return bytes(body)
    except (aiohttp.ClientError, TimeoutError) as error:
        reason = str(error) or type(error).__name__
        raise FetchError(f"could not fetch list from {url}: {reason}") from error
