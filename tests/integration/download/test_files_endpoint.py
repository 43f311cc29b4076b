"""The sandbox's ``/files`` endpoint speaks RFC 9110 ranges the way the download client relies on."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from airflow_provider_integrations.sandbox.files import content, etag, last_modified, parse_range
from airflow_provider_integrations.sandbox.process import SandboxProcess

SIZE = 100_000


async def get(
    sandbox: SandboxProcess, headers: dict[str, str] | None = None, method: str = "GET", **params: Any
) -> tuple[int, CIMultiDict[str], bytes]:
    url = f"{sandbox.url}/files/doc.bin"
    query = {"size": SIZE, **params}
    async with aiohttp.ClientSession() as s, s.request(method, url, params=query, headers=headers) as r:
        return r.status, r.headers.copy(), await r.read()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=99990-", (99990, SIZE - 1)),
        ("bytes=-10", (SIZE - 10, SIZE - 1)),
        ("bytes=5-999999", (5, SIZE - 1)),
        (f"bytes={SIZE}-", False),
        ("bytes=-0", False),
        ("bytes=10-5", None),  # invalid: ignored, not unsatisfiable
        ("bytes=0-1,5-6", None),  # several ranges: the whole file is allowed
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_range_header_parsing(header: str | None, expected: object) -> None:
    assert parse_range(header, SIZE) == expected


async def test_whole_file_with_validators(sandbox: SandboxProcess) -> None:
    status, headers, body = await get(sandbox)
    assert status == 200 and body == content("doc.bin", SIZE)
    assert headers["ETag"] == etag("doc.bin", SIZE, 0) and headers["Last-Modified"] == last_modified(0)
    assert headers["Accept-Ranges"] == "bytes" and headers["Content-Length"] == str(SIZE)


async def test_single_range_is_206_with_content_range(sandbox: SandboxProcess) -> None:
    status, headers, body = await get(sandbox, {"Range": "bytes=70000-70009"})
    assert status == 206 and headers["Content-Range"] == f"bytes 70000-70009/{SIZE}"
    assert body == content("doc.bin", SIZE)[70000:70010]


async def test_unsatisfiable_range_is_416_with_the_size(sandbox: SandboxProcess) -> None:
    status, headers, body = await get(sandbox, {"Range": f"bytes={SIZE}-"})
    assert (status, headers["Content-Range"], body) == (416, f"bytes */{SIZE}", b"")


@pytest.mark.parametrize(
    ("if_range", "status"),
    [
        (etag("doc.bin", SIZE, 0), 206),
        (last_modified(0), 206),
        ('"another-version"', 200),
        ("W/" + etag("doc.bin", SIZE, 0), 200),  # weak validators never match If-Range
        (last_modified(1), 200),
    ],
)
async def test_if_range_mismatch_sends_the_whole_file(
    sandbox: SandboxProcess, if_range: str, status: int
) -> None:
    got, _, body = await get(sandbox, {"Range": "bytes=10-", "If-Range": if_range})
    assert got == status
    assert body == content("doc.bin", SIZE)[10 if status == 206 else 0 :]


async def test_head_has_the_headers_and_no_body(sandbox: SandboxProcess) -> None:
    status, headers, body = await get(sandbox, method="HEAD")
    assert (status, headers["Content-Length"], headers["ETag"], body) == (
        200,
        str(SIZE),
        etag("doc.bin", SIZE, 0),
        b"",
    )


async def test_change_makes_a_new_version_with_a_new_etag(sandbox: SandboxProcess) -> None:
    key = "change-test"
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{sandbox.url}/files/doc.bin/change", params={"size": SIZE, "key": key}) as r:
            assert (await r.json())["version"] == 1
        async with s.get(f"{sandbox.url}/files/doc.bin/manifest", params={"size": SIZE, "key": key}) as r:
            manifest = await r.json()
    assert manifest["etag"] == etag("doc.bin", SIZE, 1) != etag("doc.bin", SIZE, 0)
    status, headers, body = await get(sandbox, key=key)
    assert status == 200 and headers["ETag"] == manifest["etag"]
    assert body == content("doc.bin", SIZE, version=1)
    assert body != content("doc.bin", SIZE)
