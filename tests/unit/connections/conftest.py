"""Fixtures of the connection-parsing tests."""

from __future__ import annotations

import pytest

from tests.unit.connections._support import Pem, make_pem


@pytest.fixture(scope="session")
def pem() -> Pem:
    return make_pem()
