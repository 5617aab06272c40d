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


#: The longest tests (measured with --durations on 2 shared cores, 2026-12-01: 50–250 s each, about
#: 13 of the suite's 28 minutes there): `python -m pytest -m "not slow"` leaves them out of a
#: quick loop; CI runs them (`.ci/run` runs every test).
SLOW = (
    "tests/test_parallel.py::test_worker_processes_give_the_serial_report",
    "tests/test_library.py::test_case_agrees[gpt2_block-float32]",
    "tests/test_check.py::test_orders_one_to_four_in_full[4-256]",
    "tests/test_library.py::test_library_loads_from_a_regular_install",
    "tests/test_plugin.py::test_diffcheck_option_runs_the_library_and_case_files_as_tests",
    "tests/test_check.py::test_orders_one_to_four_in_full[3-64]",
    "tests/test_check.py::test_correct_functions_raise_no_false_alarm[var]",
    # Measured the same way on 2026-12-01 at loads of 15–27: 467–900 s (main's tree and this one
    # alike: the whole-expression route of interp over a sort), 42 s, 40 s.
    "tests/test_symbolic.py::test_translation_matches_jax_value_and_gradient[lt_to]",
    "tests/test_symbolic.py::test_higher_order_expressions_by_reverse_accumulation",
    "tests/test_symbolic.py::test_translation_matches_jax_value_and_gradient[while0]",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in SLOW:
            item.add_marker(pytest.mark.slow)


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _exact_results_forgotten():
    """Each test starts from no remembered exact results (`_exact.remembered`): a program an earlier
    test checked at the same point would otherwise skip the exact method a test's budget or patch
    is about. Within a test, remembering works as for a user."""
    from diffcheck import _exact

    _exact._REMEMBERED.clear()
    yield
