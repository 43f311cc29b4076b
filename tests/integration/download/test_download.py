"""Resumable downloads against the real sandbox: every byte is checked against the generator, and the
server's own record of what was asked and sent proves what was (not) fetched twice."""

from __future__ import annotations

import hashlib
import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_integrations.connections.http_config import Timeouts
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.http.download import (
    ChecksumMismatchError,
    DownloadResult,
    SizeMismatchError,
    _PartFile,
    download,
    parse_checksum,
)
from airflow_provider_integrations.http.sessions import lease_client
from airflow_provider_integrations.sandbox.files import content, etag
from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests.integration.download.conftest import MakeConfig, sandbox_json

SIZE = 4_000_000
CUT = 1_500_000
# Bytes the client had received but not yet read when the connection dropped are lost with it: at most
# aiohttp's read-buffer high-water mark (2 x 256 KiB) plus one socket read, by its flow control.
LOST_MAX = 640 * 1024


def resumed_near(offset: int, cut: int = CUT) -> bool:
    return cut - LOST_MAX <= offset <= cut


async def fetch(make_config: MakeConfig, dest: Path, params: dict[str, Any], **kw: Any) -> DownloadResult:
    async with lease_client(make_config(**kw.pop("config", {}))) as api:
        return await download(api, "/files/data.bin", dest, params=params, **kw)


async def stats(sandbox: SandboxProcess, key: str, name: str = "data.bin") -> dict[str, Any]:
    result: dict[str, Any] = await sandbox_json(sandbox, "GET", f"/files/{name}/stats", key=key)
    return result


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir() if p.name != dest.name)


async def test_whole_file_is_written_verified_and_renamed(
    make_config: MakeConfig, sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    dest = tmp_path / "data.bin"
    manifest = await sandbox_json(sandbox, "GET", "/files/data.bin/manifest", size=SIZE)
    result = await fetch(
        make_config, dest, {"size": SIZE, "key": key}, checksum=f"sha256:{manifest['sha256']}"
    )
    assert dest.read_bytes() == content("data.bin", SIZE)
    assert (result.size, result.requests, result.resumed_at, result.restarts) == (SIZE, 1, (), 0)
    assert result.digest == f"sha256:{manifest['sha256']}" and result.etag == manifest["etag"]
    assert leftovers(dest) == [], "no .part or sidecar left behind"
    json.dumps(result.as_dict())  # XCom-ready


async def test_drop_mid_body_resumes_with_range_and_if_range(
    make_config: MakeConfig, sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    dest = tmp_path / "data.bin"
    result = await fetch(make_config, dest, {"size": SIZE, "key": key, "cut_after": CUT})
    assert dest.read_bytes() == content("data.bin", SIZE)
    assert (result.requests, len(result.resumed_at), result.restarts) == (2, 1, 0)
    (offset,) = result.resumed_at
    assert resumed_near(offset), offset
    seen = await stats(sandbox, key)
    assert seen["ranges"] == [None, f"bytes={offset}-"]
    assert seen["if_ranges"] == [None, etag("data.bin", SIZE, 0)]
    assert seen["statuses"] == [200, 206]
    assert seen["bytes_sent"] == SIZE + CUT - offset, "only the bytes lost in the drop were sent twice"


async def test_attempts_that_make_progress_do_not_use_up_the_retry_budget(
    make_config: MakeConfig, key: str, tmp_path: Path
) -> None:
    dest = tmp_path / "data.bin"
    params = {"size": SIZE, "key": key, "cut_after": 1_000_000, "cuts": 3}
    result = await fetch(make_config, dest, params, config={"max_attempts": 2})
    assert len(result.resumed_at) == 3 and list(result.resumed_at) == sorted(set(result.resumed_at))
    assert dest.read_bytes() == content("data.bin", SIZE)


async def test_attempts_without_progress_give_up_with_a_transport_error(
    make_config: MakeConfig, sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    dest = tmp_path / "data.bin"
    params = {"size": SIZE, "key": key, "cut_after": 0, "cuts": 10}
    with pytest.raises(errors.TransportError) as info:
        await fetch(make_config, dest, params, config={"max_attempts": 3})
    assert "/files/data.bin" in str(info.value)
    assert (await stats(sandbox, key))["requests"] == 3
    assert leftovers(dest) == [] and not dest.exists(), "an empty partial is not kept"


async def test_next_try_resumes_from_the_bytes_on_disk(
    make_config: MakeConfig, sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    dest = tmp_path / "data.bin"
    params = {"size": SIZE, "key": key, "cut_after": CUT}
    with pytest.raises(errors.TransportError):
        await fetch(make_config, dest, params, config={"max_attempts": 1})
    assert not dest.exists()
    on_disk = (tmp_path / "data.bin.part").stat().st_size
    assert resumed_near(on_disk), on_disk

    # A new call, as an Airflow retry would make it: the partial file and its validator are reused.
    result = await fetch(make_config, dest, params, config={"max_attempts": 1})
    assert (result.requests, result.resumed_at, result.restarts) == (1, (on_disk,), 0)
    assert dest.read_bytes() == content("data.bin", SIZE)
    assert result.digest == "sha256:" + hashlib.sha256(content("data.bin", SIZE)).hexdigest()
    assert (await stats(sandbox, key))["bytes_sent"] == SIZE + CUT - on_disk
    assert leftovers(dest) == []


async def test_file_changed_between_tries_restarts_from_zero(
    make_config: MakeConfig, sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    dest = tmp_path / "data.bin"
    params = {"size": SIZE, "key": key, "cut_after": CUT}
    with pytest.raises(errors.TransportError):
        await fetch(make_config, dest, params, config={"max_attempts": 1})
    await sandbox_json(sandbox, "POST", "/files/data.bin/change", size=SIZE, key=key)

    result = await fetch(make_config, dest, params)
    assert (result.resumed_at, result.restarts) == ((), 1)
    assert dest.read_bytes() == content("data.bin", SIZE, version=1), "no splice of two versions"
    seen = await stats(sandbox, key)
    assert seen["if_ranges"][1] == etag("data.bin", SIZE, 0), "the old validator was sent"
    assert seen["statuses"] == [200, 200], "If-Range did not match: the server sent the whole new file"


async def test_file_changed_during_the_download_restarts_from_zero(
    make_config: MakeConfig, sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    dest = tmp_path / "data.bin"
    params = {"size": SIZE, "key": key, "cut_after": CUT, "change_on_cut": 1}
    manifest = await sandbox_json(sandbox, "GET", "/files/data.bin/manifest", size=SIZE, key=key)
    assert manifest["version"] == 0
    result = await fetch(make_config, dest, params)
    assert (result.requests, result.resumed_at, result.restarts) == (2, (), 1)
    assert result.etag == etag("data.bin", SIZE, 1)
    assert dest.read_bytes() == content("data.bin", SIZE, version=1)


async def test_a_file_that_changes_on_every_attempt_is_given_up(
    make_config: MakeConfig, sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    dest = tmp_path / "data.bin"
    params = {"size": SIZE, "key": key, "cut_after": CUT, "cuts": 50, "change_on_cut": 1}
    with pytest.raises(errors.ResponseContractError, match="changed or could not be resumed 6 times"):
        await fetch(make_config, dest, params)
    assert (await stats(sandbox, key))["requests"] == 7, "one first try and 6 restarts, then it stops"
    assert leftovers(dest) == [] and not dest.exists()


def _leave_partial(dest: Path, url: str, data: bytes, validator: str) -> None:
    """The state a crash leaves: bytes in ``.part`` and the sidecar naming their version."""
    part = _PartFile(dest, errors.redact_url(url), "sha256")
    part.reset(validator)
    part.write(data)
    part.close()


async def test_416_for_a_complete_partial_finishes_without_a_body(
    make_config: MakeConfig, sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    dest = tmp_path / "data.bin"
    data = content("data.bin", SIZE)
    url = f"{sandbox.url}/files/data.bin?size={SIZE}&key={key}"
    _leave_partial(dest, url, data, etag("data.bin", SIZE, 0))
    result = await fetch(
        make_config,
        dest,
        {"size": SIZE, "key": key},
        checksum=f"sha256:{hashlib.sha256(data).hexdigest()}",
    )
    assert (result.requests, result.size, result.restarts) == (1, SIZE, 0)
    seen = await stats(sandbox, key)
    assert (seen["statuses"], seen["ranges"], seen["bytes_sent"]) == ([416], [f"bytes={SIZE}-"], 0)
    assert dest.read_bytes() == data and leftovers(dest) == []


async def test_416_for_a_partial_longer_than_the_file_restarts(
    make_config: MakeConfig, sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    dest = tmp_path / "data.bin"
    url = f"{sandbox.url}/files/data.bin?size={SIZE}&key={key}"
    _leave_partial(dest, url, content("data.bin", SIZE) + b"extra", etag("data.bin", SIZE, 0))
    result = await fetch(make_config, dest, {"size": SIZE, "key": key})
    assert (result.requests, result.restarts) == (2, 1)
    assert (await stats(sandbox, key))["statuses"] == [416, 200]
    assert dest.read_bytes() == content("data.bin", SIZE)


async def test_checksum_mismatch_is_fatal_and_leaves_nothing(
    make_config: MakeConfig, key: str, tmp_path: Path
) -> None:
    dest = tmp_path / "data.bin"
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ChecksumMismatchError) as info:
        await fetch(make_config, dest, {"size": SIZE, "key": key, "cut_after": CUT}, checksum=wrong)
    err = info.value
    assert isinstance(err, errors.FatalError) and not err.retriable
    assert "0" * 64 in str(err) and hashlib.sha256(content("data.bin", SIZE)).hexdigest() in str(err)
    assert not dest.exists() and leftovers(dest) == [], "bad bytes are not kept for a resume"


async def test_expected_size_mismatch_is_fatal(make_config: MakeConfig, key: str, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    with pytest.raises(SizeMismatchError, match=f"downloaded {SIZE} bytes, expected_size is 5"):
        await fetch(make_config, dest, {"size": SIZE, "key": key}, expected_size=5)
    assert not dest.exists() and leftovers(dest) == []


@pytest.mark.parametrize(
    ("knob", "second_range"),
    [({"validators": 0}, None), ({"ranges": 0}, f"bytes={CUT}-")],
    ids=["no-validators", "ranges-ignored"],
)
async def test_sources_that_cannot_resume_are_fetched_again_whole(
    make_config: MakeConfig,
    sandbox: SandboxProcess,
    key: str,
    tmp_path: Path,
    knob: dict[str, int],
    second_range: str | None,
) -> None:
    dest = tmp_path / "data.bin"
    result = await fetch(make_config, dest, {"size": SIZE, "key": key, "cut_after": CUT, **knob})
    assert (result.requests, result.resumed_at, result.restarts) == (2, (), 1)
    assert dest.read_bytes() == content("data.bin", SIZE)
    seen = await stats(sandbox, key)
    # Without a validator, a Range could splice two versions, so none is sent.
    assert seen["ranges"] == [None, second_range] and seen["statuses"] == [200, 200]


async def test_not_found_is_fatal_and_leaves_nothing(make_config: MakeConfig, tmp_path: Path) -> None:
    dest = tmp_path / "missing.bin"
    async with lease_client(make_config()) as api:
        with pytest.raises(errors.NotFoundError) as info:
            await download(api, "/no/such/file", dest)
    assert info.value.status == 404 and "/no/such/file" in str(info.value)
    assert leftovers(dest) == [] and not dest.exists()


async def test_200_mb_download_uses_bounded_memory(
    make_config: MakeConfig, sandbox: SandboxProcess, key: str, tmp_path: Path
) -> None:
    size = 200 * 1024 * 1024
    dest = tmp_path / "big.bin"
    manifest = await sandbox_json(sandbox, "GET", "/files/big.bin/manifest", size=size)
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        async with lease_client(make_config(timeouts=Timeouts(connect=2, read=30, total=5))) as api:
            result = await download(
                api,
                "/files/big.bin",
                dest,
                params={"size": size, "key": key, "cut_after": 120 * 1024 * 1024},
                checksum=f"sha256:{manifest['sha256']}",
            )
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rate = size / seconds / 1e6
    print(f"200 MiB with one resume: {seconds:.1f} s, {rate:.0f} MB/s, peak {peak / 1e6:.2f} MB")
    assert dest.stat().st_size == size and len(result.resumed_at) == 1
    assert resumed_near(result.resumed_at[0], 120 * 1024 * 1024), result.resumed_at
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak} bytes for a {size}-byte file"


def test_bad_arguments_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"checksum='sha256-abc': expected '<algorithm>:<hex digest>'"):
        parse_checksum("sha256-abc")
    with pytest.raises(ValueError, match="expected 64 hex digits for sha256"):
        parse_checksum("sha256:abc")
    with pytest.raises(ValueError, match="algorithm one of"):
        parse_checksum("crc99:abcd")
    assert parse_checksum(" SHA256:" + "AB" * 32) == ("sha256", "ab" * 32)


async def test_bad_download_arguments_name_the_field(make_config: MakeConfig, tmp_path: Path) -> None:
    async with lease_client(make_config()) as api:
        with pytest.raises(ValueError, match=r"dest=.*does not exist"):
            await download(api, "/files/x", tmp_path / "no-dir" / "x.bin")
        with pytest.raises(ValueError, match="chunk_size=10: expected 1 KiB to 16 MiB"):
            await download(api, "/files/x", tmp_path / "x.bin", chunk_size=10)
        with pytest.raises(ValueError, match="expected_size=-1"):
            await download(api, "/files/x", tmp_path / "x.bin", expected_size=-1)
    assert leftovers(tmp_path / "x.bin") == []
