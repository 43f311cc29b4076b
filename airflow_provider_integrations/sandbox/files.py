"""File downloads with HTTP range requests (RFC 9110 §13.1.5 and §14), for resumable-download tests.

- ``GET /files/{name}?size=N`` serves N bytes that are a pure function of (name, size, version), with a
  strong ``ETag``, ``Last-Modified``, ``Accept-Ranges: bytes`` and ``Content-Length``. ``HEAD`` answers
  the same headers.
- ``Range: bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` (one range) gets 206 with ``Content-Range``; a range
  starting at or after the end gets 416 with ``Content-Range: bytes */N``. Several ranges or a malformed
  header are ignored (200, the whole file), which RFC 9110 allows.
- ``If-Range`` (an ETag or an HTTP-date) is evaluated first: when it does not match the current version,
  ``Range`` is ignored and the whole file is sent, so a client never splices two versions.

Knobs; the stateful ones are keyed by ``?key=`` so parallel tests never share a file's state:

- ``cut_after=N`` (with ``cuts=K``, default 1): the first K responses for the key send N body bytes, then
  the server closes the connection: a drop mid-body that the client sees as a short body.
- ``change_on_cut=1``: the file is replaced (new version, new ETag) when the connection is cut.
- ``validators=0``: no ETag or Last-Modified (a source a client cannot safely resume from).
- ``ranges=0``: ``Accept-Ranges: none`` and ``Range`` is ignored.

``POST /files/{name}/change?key=K`` replaces the file (next version). ``GET /files/{name}/manifest``
answers ``{"name", "size", "sha256", "etag", "last_modified", "version"}`` for the current version, the
way partners publish checksums next to exports. ``GET /files/{name}/stats?key=K`` answers what was
asked and sent: ``requests``, ``bytes_sent``, and per request ``ranges``, ``if_ranges`` and ``statuses``.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from airflow_provider_integrations.sandbox.params import int_param

BLOCK = 64 * 1024
MAX_SIZE = 4 * 1024**3
DEFAULT_SIZE = 1024 * 1024
# Last-Modified of version 0; each version is one hour later.
BASE_MTIME = 1_735_689_600
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TRUE = ("1", "true", "yes")


def _seed(name: str, size: int, version: int) -> bytes:
    return f"{name}:{size}:{version}".encode()


def block(name: str, size: int, version: int, index: int) -> bytes:
    """Bytes ``index * BLOCK`` to ``(index + 1) * BLOCK`` of the file (the last block is cut at ``size``)."""
    digest = hashlib.sha256(_seed(name, size, version) + index.to_bytes(8, "big")).digest()
    return (digest * (BLOCK // len(digest)))[: max(0, min(BLOCK, size - index * BLOCK))]


def content(name: str, size: int, version: int = 0, start: int = 0, end: int | None = None) -> bytes:
    """Bytes ``start`` to ``end`` (exclusive) of the file; tests compare downloads against it."""
    end = size if end is None else min(end, size)
    out = bytearray()
    for index in range(start // BLOCK, (end + BLOCK - 1) // BLOCK):
        data = block(name, size, version, index)
        lo = max(start - index * BLOCK, 0)
        out += data[lo : end - index * BLOCK]
    return bytes(out)


def etag(name: str, size: int, version: int) -> str:
    return '"' + hashlib.sha256(_seed(name, size, version)).hexdigest()[:20] + '"'


def last_modified(version: int) -> str:
    return email.utils.formatdate(BASE_MTIME + version * 3600, usegmt=True)


@dataclass
class FileStats:
    requests: int = 0
    bytes_sent: int = 0
    ranges: list[str | None] = field(default_factory=list)
    if_ranges: list[str | None] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@dataclass
class FilesState:
    versions: Counter[tuple[str, str]] = field(default_factory=Counter)
    cuts: Counter[tuple[str, str]] = field(default_factory=Counter)
    stats: dict[tuple[str, str], FileStats] = field(default_factory=dict)
    checksums: dict[tuple[str, int, int], str] = field(default_factory=dict)


FILES_KEY = web.AppKey("files_state", FilesState)
MAX_TRACKED = 10_000


def _file(request: web.Request) -> tuple[str, str, int, int]:
    """(name, key, size, current version) of the request."""
    name = request.match_info["name"]
    key = request.query.get("key", "")
    size = int_param(request, "size", DEFAULT_SIZE, minimum=0, maximum=MAX_SIZE)
    return name, key, size, request.app[FILES_KEY].versions[(key, name)]


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """(first, last) byte of a satisfiable single range; ``False`` if unsatisfiable; ``None``: ignore it."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None  # several ranges, another unit, or garbage
    first_s, last_s = match.groups()
    if first_s == "":
        suffix = int(last_s)
        return (max(0, size - suffix), size - 1) if suffix and size else False
    first = int(first_s)
    last = size - 1 if last_s == "" else min(int(last_s), size - 1)
    if last_s and int(last_s) < first:
        return None  # invalid, not unsatisfiable (RFC 9110 §14.1.1)
    return (first, last) if first < size else False


def _if_range_matches(value: str, current_etag: str, current_mtime: str) -> bool:
    if value.startswith(('"', "W/")):
        # Weak validators never match for If-Range (RFC 9110 §13.1.5).
        return not value.startswith("W/") and value == current_etag
    return value == current_mtime


def _stats(request: web.Request, key: str, name: str) -> FileStats:
    table = request.app[FILES_KEY].stats
    if len(table) >= MAX_TRACKED and (key, name) not in table:
        del table[next(iter(table))]
    return table.setdefault((key, name), FileStats())


async def serve(request: web.Request) -> web.StreamResponse:
    name, key, size, version = _file(request)
    state = request.app[FILES_KEY]
    with_validators = request.query.get("validators", "1") in _TRUE
    with_ranges = request.query.get("ranges", "1") in _TRUE
    tag, mtime = etag(name, size, version), last_modified(version)
    headers = {"Content-Type": "application/octet-stream"}
    if with_validators:
        headers |= {"ETag": tag, "Last-Modified": mtime}
    headers["Accept-Ranges"] = "bytes" if with_ranges else "none"

    stats = _stats(request, key, name)
    stats.requests += 1
    range_header, if_range = request.headers.get("Range"), request.headers.get("If-Range")
    stats.ranges.append(range_header)
    stats.if_ranges.append(if_range)
    wanted = parse_range(range_header, size) if with_ranges else None
    if if_range is not None and not (with_validators and _if_range_matches(if_range, tag, mtime)):
        wanted = None
    if wanted is False:
        stats.statuses.append(416)
        headers["Content-Range"] = f"bytes */{size}"
        return web.Response(status=416, headers=headers)

    first, last = wanted if isinstance(wanted, tuple) else (0, size - 1)
    status = 206 if isinstance(wanted, tuple) else 200
    if status == 206:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    stats.statuses.append(status)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = last - first + 1
    await response.prepare(request)
    if request.method == "HEAD":
        return response

    limit = response.content_length
    if key and "cut_after" in request.query:
        cuts = int_param(request, "cuts", 1, minimum=0)
        if state.cuts[(key, name)] < cuts:
            state.cuts[(key, name)] += 1
            limit = min(limit, int_param(request, "cut_after", 0, minimum=0))
    sent = await _send(response, name, size, version, first, limit)
    stats.bytes_sent += sent
    if sent < response.content_length:
        if request.query.get("change_on_cut", "") in _TRUE:
            state.versions[(key, name)] += 1
        # A graceful close after a flush: the client gets exactly ``limit`` bytes, then a short body.
        if request.transport is not None:
            request.transport.close()
    return response


async def _send(
    response: web.StreamResponse, name: str, size: int, version: int, first: int, limit: int
) -> int:
    """Write ``limit`` bytes of the file from ``first``; return how many went out."""
    sent, offset = 0, first
    try:
        while sent < limit:
            index = offset // BLOCK
            data = block(name, size, version, index)[offset - index * BLOCK :][: limit - sent]
            await response.write(data)
            sent += len(data)
            offset += len(data)
    except ConnectionResetError:
        pass  # the client stopped reading (a checksum mismatch, a test that walks away): normal
    return sent


async def change(request: web.Request) -> web.Response:
    name, key, size, _ = _file(request)
    versions = request.app[FILES_KEY].versions
    versions[(key, name)] += 1
    version = versions[(key, name)]
    return web.json_response({"name": name, "version": version, "etag": etag(name, size, version)})


async def manifest(request: web.Request) -> web.Response:
    name, _, size, version = _file(request)
    checksums = request.app[FILES_KEY].checksums
    digest = checksums.get((name, size, version))
    if digest is None:
        # Hashing a large file takes a while: off the loop, so other tests' requests are not stalled.
        digest = await asyncio.to_thread(_sha256, name, size, version)
        if len(checksums) >= MAX_TRACKED:
            checksums.clear()
        checksums[(name, size, version)] = digest
    body: dict[str, Any] = {
        "name": name,
        "size": size,
        "sha256": digest,
        "etag": etag(name, size, version),
        "last_modified": last_modified(version),
        "version": version,
    }
    return web.json_response(body)


def _sha256(name: str, size: int, version: int) -> str:
    h = hashlib.sha256()
    for index in range((size + BLOCK - 1) // BLOCK):
        h.update(block(name, size, version, index))
    return h.hexdigest()


async def file_stats(request: web.Request) -> web.Response:
    name, key = request.match_info["name"], request.query.get("key", "")
    stats = request.app[FILES_KEY].stats.get((key, name), FileStats())
    return web.json_response(
        {
            "requests": stats.requests,
            "bytes_sent": stats.bytes_sent,
            "ranges": stats.ranges,
            "if_ranges": stats.if_ranges,
            "statuses": stats.statuses,
        }
    )


def register(app: web.Application) -> None:
    app[FILES_KEY] = FilesState()
    app.router.add_get("/files/{name}", serve)
    app.router.add_post("/files/{name}/change", change)
    app.router.add_get("/files/{name}/manifest", manifest)
    app.router.add_get("/files/{name}/stats", file_stats)
