"""Resumable file downloads: stream a body to disk in bounded chunks, resume after a drop, verify, rename.

Bytes go to ``<dest>.part``, and a sidecar ``<dest>.part.json`` records the URL (without secrets) and
the validator they belong to: a strong ``ETag``, else ``Last-Modified``. After a drop, the next request
asks for the rest with ``Range: bytes=<on disk>-`` and ``If-Range: <validator>``. If the file changed at
the source, the server ignores the range and sends the new version whole (200), and the download starts
over instead of splicing two versions; the same happens when the source offers no validator. Because
the sidecar survives the process, an Airflow retry resumes where the previous try stopped.

Only when the size (``Content-Length`` / ``Content-Range`` total, and ``expected_size``) and the
checksum match is the file fsynced and renamed onto ``dest``, so readers never see a partial file. A
mismatch raises :class:`SizeMismatchError` or :class:`ChecksumMismatchError` (both
:class:`~.errors.ResponseContractError`, fatal) and deletes the partial file, since resuming bad bytes
cannot help. Transient failures follow the connection's retry policy; a failed attempt that still
brought new bytes does not count against ``retry_max_attempts``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from airflow_provider_integrations.connections.http_config import Timeouts
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.http.client import client_timeout
from airflow_provider_integrations.http.retry import next_delay

if TYPE_CHECKING:
    from airflow_provider_integrations.http.client import HttpClient, Params

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 256 * 1024
MAX_RESTARTS = 5
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED_RANGE = re.compile(r"^bytes \*/(\d+)$")


class SizeMismatchError(errors.ResponseContractError):
    """The body is not as long as the server declared or the caller expected."""


class ChecksumMismatchError(errors.ResponseContractError):
    """The downloaded bytes do not have the expected digest."""


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What a download did; :meth:`as_dict` is XCom-ready."""

    path: str
    size: int
    digest: str  # "<algorithm>:<hex>" of the final file (sha256 unless the checksum named another)
    requests: int
    resumed_at: tuple[int, ...]  # byte offsets where a request continued a partial file
    restarts: int  # times bytes on disk were discarded (the source changed, or could not resume)
    etag: str | None
    last_modified: str | None
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "resumed_at": list(self.resumed_at)}


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"sha256:<hex>"`` -> (algorithm, lowercase hex); raises ``ValueError`` naming the field."""
    algorithm, sep, digest = checksum.partition(":")
    algorithm, digest = algorithm.strip().lower(), digest.strip().lower()
    if not sep or algorithm not in hashlib.algorithms_guaranteed or algorithm.startswith("shake"):
        raise ValueError(
            f"checksum={checksum!r}: expected '<algorithm>:<hex digest>' with algorithm one of "
            "md5, sha1, sha256, sha512, ..."
        )
    size = hashlib.new(algorithm).digest_size
    if len(digest) != size * 2 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"checksum={checksum!r}: expected {size * 2} hex digits for {algorithm}")
    return algorithm, digest


def _validator(headers: Mapping[str, str]) -> str | None:
    tag = headers.get("ETag")
    if tag and not tag.startswith("W/"):
        return tag
    return headers.get("Last-Modified")


class _PartFile:
    """The partial file and its sidecar; a write lands in the page cache, so it is done inline.

    A thread hop per chunk would cost more than the write; whole-file work (hashing a partial left by
    an earlier try, fsync) runs in a thread.
    """

    def __init__(self, dest: Path, url: str, algorithm: str) -> None:
        self.path = dest.with_name(dest.name + ".part")
        self.meta = dest.with_name(dest.name + ".part.json")
        self.url, self.algorithm = url, algorithm
        self.hasher = hashlib.new(algorithm)
        self.size = 0
        self.validator: str | None = None
        self._file: IO[bytes] | None = None

    def adopt_or_reset(self) -> None:
        """Keep a partial file of the same URL with a validator (hashing it), else start empty."""
        try:
            meta = json.loads(self.meta.read_text())
            if meta.get("url") == self.url and meta.get("validator"):
                self._file = self.path.open("r+b")
                self.validator = meta["validator"]
                while chunk := self._file.read(1024 * 1024):
                    self.hasher.update(chunk)
                    self.size += len(chunk)
                return
        except (OSError, ValueError, AttributeError):
            pass
        self.reset(None)

    def reset(self, validator: str | None) -> None:
        if self._file is None:
            self._file = self.path.open("w+b")
        self._file.seek(0)
        self._file.truncate()
        self.hasher, self.size = hashlib.new(self.algorithm), 0
        self.remember(validator)

    def remember(self, validator: str | None) -> None:
        self.validator = validator
        self.meta.write_text(json.dumps({"url": self.url, "validator": validator}))

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)
        self.hasher.update(chunk)
        self.size += len(chunk)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def commit(self, dest: Path) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self.close()
        os.replace(self.path, dest)
        self.meta.unlink(missing_ok=True)

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def download(
    client: HttpClient,
    path: str,
    dest: str | os.PathLike[str],
    *,
    params: Params = None,
    headers: Mapping[str, str] | None = None,
    checksum: str | None = None,
    expected_size: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    timeout: Timeouts | None = None,
) -> DownloadResult:
    """Download ``path`` (relative to the connection's base URL) to ``dest``; see the module docstring.

    :param checksum: ``"<algorithm>:<hex digest>"`` the file must have, e.g. ``"sha256:9f86..."``.
    :param expected_size: the size in bytes the file must have.
    :param chunk_size: bytes read and written per step: memory use does not grow with the file.
    :param timeout: default: the connection's connect and read timeouts and no total timeout, since a
        large file legitimately takes long; a stalled transfer still fails on the read timeout.
    """
    target = Path(dest)
    if not target.parent.is_dir():
        raise ValueError(f"dest={str(dest)!r}: directory {str(target.parent)!r} does not exist")
    if not 1024 <= chunk_size <= 16 * 1024 * 1024:
        raise ValueError(f"chunk_size={chunk_size}: expected 1 KiB to 16 MiB")
    if expected_size is not None and expected_size < 0:
        raise ValueError(f"expected_size={expected_size}: expected a size in bytes >= 0")
    algorithm, wanted = parse_checksum(checksum) if checksum else ("sha256", None)
    url = client.url_for(path)
    if params:
        url = url.update_query(params)
    if timeout is None:
        t = client.config.timeouts
        timeout = Timeouts(connect=t.connect, read=t.read or t.total, total=None)

    started = time.monotonic()
    part = _PartFile(target, errors.redact_url(url), algorithm)
    await asyncio.to_thread(part.adopt_or_reset)
    transfer = _Transfer(client, url, part, headers or {}, client_timeout(timeout), chunk_size)
    try:
        await transfer.run()
        size, digest = part.size, part.hasher.hexdigest()
        if expected_size is not None and size != expected_size:
            raise SizeMismatchError(
                f"downloaded {size} bytes, expected_size is {expected_size}", method="GET", url=part.url
            )
        if wanted is not None and digest != wanted:
            raise ChecksumMismatchError(
                f"{algorithm} of the {size} downloaded bytes is {digest}, expected {wanted}",
                method="GET",
                url=part.url,
            )
        await asyncio.to_thread(part.commit, target)
    except Exception as exc:
        # Bad bytes are not worth resuming; an empty partial is not worth keeping.
        if isinstance(exc, errors.ResponseContractError) or part.size == 0:
            await asyncio.to_thread(part.discard)
        raise
    finally:
        part.close()
    return DownloadResult(
        path=str(target),
        size=size,
        digest=f"{algorithm}:{digest}",
        requests=transfer.requests,
        resumed_at=tuple(transfer.resumed),
        restarts=transfer.restarts,
        etag=transfer.etag,
        last_modified=transfer.last_modified,
        seconds=round(time.monotonic() - started, 3),
    )


class _Transfer:
    """The request loop of one download: ask for what is missing until the body is complete."""

    def __init__(
        self,
        client: HttpClient,
        url: URL,
        part: _PartFile,
        headers: Mapping[str, str],
        timeout: aiohttp.ClientTimeout,
        chunk_size: int,
    ) -> None:
        self.client, self.url, self.part = client, url, part
        # Ranges count stored bytes: a compressed transfer would shift every offset.
        self.headers = {**headers, "Accept-Encoding": "identity"}
        self.timeout, self.chunk_size = timeout, chunk_size
        self.requests = self.restarts = self.received = 0
        self.resumed: list[int] = []
        self.etag: str | None = None
        self.last_modified: str | None = None

    async def run(self) -> None:
        failures, waited = 0, 0.0
        while True:
            received = self.received
            try:
                if await self._attempt():
                    return
                continue
            except errors.HttpError as exc:
                self.part.flush()
                error = exc  # from client.open(): classified and counted by the breaker there
            except Exception as exc:
                self.part.flush()
                error = errors.translate(exc, "GET", self.url)  # mid-body: the attempt failed late
                if error.retriable:
                    self.client.breaker.record_failure()
            # Only attempts that brought no bytes use up the retry budget: a long file on a flaky
            # link may need more resumes than retry_max_attempts, and each one makes progress.
            failures = 1 if self.received > received else failures + 1
            delay = next_delay(
                self.client.config.retry, attempt=failures, waited=waited, error=error, repeatable=True
            )
            if delay is None:
                raise error from None
            log.warning(
                "%s: %s at byte %d; retrying in %.2f s", self.part.url, error.args[0], self.part.size, delay
            )
            waited += delay
            await asyncio.sleep(delay)

    async def _attempt(self) -> bool:
        """One request; ``True`` when the file is complete, ``False`` to send another at once."""
        client, part = self.client, self.part
        offset = part.size
        ask = dict(self.headers)
        if offset and part.validator:
            ask |= {"Range": f"bytes={offset}-", "If-Range": part.validator}
        self.requests += 1
        # A 416 answers a resume past the end; without a Range it is an error like any other 4xx.
        accept = (416,) if offset and part.validator else ()
        resp = await client.open("GET", self.url, headers=ask, timeout=self.timeout, accept_statuses=accept)
        async with resp:
            status, headers = resp.status, resp.headers
            if status == 416:
                unsatisfied = _UNSATISFIED_RANGE.match(headers.get("Content-Range", ""))
                if unsatisfied and int(unsatisfied.group(1)) == offset:
                    return True  # all on disk already: a crash between the last write and the rename
                await self._restart(offset, status, None)  # the file shrank at the source
                return False
            self.etag, self.last_modified = headers.get("ETag"), headers.get("Last-Modified")
            usable, total = await self._begin(resp, offset)
            if not usable:
                return False
            async for chunk in resp.content.iter_chunked(self.chunk_size):
                part.write(chunk)
                self.received += len(chunk)
        if total is not None and part.size != total:
            if part.size > total:
                raise SizeMismatchError(
                    f"received {part.size} bytes, the server declared {total}", method="GET", url=part.url
                )
            return False  # the server sent a shorter range than asked for: ask for the rest
        return True

    async def _begin(self, resp: aiohttp.ClientResponse, offset: int) -> tuple[bool, int | None]:
        """Decide what the body continues: (False, _) to discard it, else (True, declared total size)."""
        part, headers = self.part, resp.headers
        validator = _validator(headers)
        if resp.status != 206:
            if offset:
                # If-Range did not match (the file changed) or the server ignores ranges.
                await self._restart(offset, resp.status, validator)
            else:
                await asyncio.to_thread(part.remember, validator)
            return True, resp.content_length
        body_range = _CONTENT_RANGE.match(headers.get("Content-Range", ""))
        if not body_range or int(body_range.group(1)) != offset or validator not in (None, part.validator):
            # Not the range asked for, or another version than the bytes on disk: ask for all.
            await self._restart(offset, resp.status, None)
            return False, None
        if offset:
            self.resumed.append(offset)
            log.info("%s: resuming at byte %d (If-Range %s)", part.url, offset, part.validator)
        else:  # a range we did not ask for, from byte 0: a server that caps response sizes
            await asyncio.to_thread(part.remember, validator)
        return True, None if body_range.group(3) == "*" else int(body_range.group(3))

    async def _restart(self, offset: int, status: int, validator: str | None) -> None:
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            # A source that changes faster than it can be read, or answers ranges inconsistently.
            raise errors.ResponseContractError(
                f"the file changed or could not be resumed {self.restarts} times in one download",
                method="GET",
                url=self.part.url,
                status=status,
            )
        log.info("%s: cannot resume at byte %d (HTTP %d); starting over", self.part.url, offset, status)
        await asyncio.to_thread(self.part.reset, validator)
