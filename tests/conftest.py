import os
import shutil
import tempfile

import numpy as np
import pytest

# The command line keeps compiled programs in the user's cache folder by default; the tests keep
# theirs in a folder of their own, for this session only (subprocesses inherit the variable).
_CACHE = tempfile.mkdtemp(prefix="diffcheck-test-cache-")


def pytest_configure(config):
    os.environ["DIFFCHECK_CACHE_DIR"] = _CACHE


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
