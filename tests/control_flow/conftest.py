"""Fixtures of the control-flow tests: every test runs on each selected backend (``dev``,
tests/conftest.py) with the device's passes on and off (``passes``)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=[True, False], ids=["passes-on", "passes-off"])
def passes(request):
    return request.param
