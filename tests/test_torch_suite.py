"""A fast subset of the corpus from PyTorch's own OpInfo database (benchmarks/torch_suite.py), one
test per entry.

What a user relies on: each entry's translation does what docs/torch_suite.md says it does (the
exact reference where it says so, with the translated value equal to torch's forward; the reason
it gives where it is refused), and the full check gives the verdict recorded there. The entries
are every 23rd of the corpus for the translation and every 69th for the full check, against
docs/torch_suite.json (the last whole run, `python -m benchmarks.torch_suite --check 3 --json …`):
a change that moves an entry from its class fails here, and the record is then run again.
"""

import json
import signal
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from benchmarks import torch_suite  # noqa: E402

RECORD = Path(__file__).resolve().parents[1] / "docs" / "torch_suite.json"
ENTRIES = {row["i"]: row for row in map(json.loads, RECORD.read_text().splitlines()) if row["j"] == 0}
TRANSLATED = sorted(i for i in ENTRIES if i % 23 == 0)
CHECKED = sorted(i for i in ENTRIES if i % 69 == 0 and "check" in ENTRIES[i])


@pytest.fixture(scope="module")
def ops():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch_suite._op_db()


def _sample(ops, i):
    op = ops[i]
    assert op.name == ENTRIES[i]["op"], "op_db changed: run the corpus again (docs/torch_suite.md)"
    torch.manual_seed(i)  # as the suite's worker: the samples do not depend on the order
    return op, next(torch_suite._first(op.sample_inputs("cpu", torch.float64, requires_grad=True), 1))


def _fn(op, sample):
    def fn(*a, **k):
        return sample.output_process_fn_grad(op.gradcheck_wrapper(op.get_op(), *a, **k))

    return fn, (sample.input, *sample.args), dict(sample.kwargs)


def _class(row) -> dict:
    """What the record says of an entry's translation."""
    if "refused" in row:
        return {"refused": row["refused"]}
    return {"value": row.get("value"), "sympy_missing": row.get("sympy_missing")}


@pytest.mark.parametrize("i", TRANSLATED, ids=[f"{i}-{ENTRIES[i]['op']}" for i in TRANSLATED])
def test_the_translation_of_an_opinfo_entry_is_what_the_record_says(ops, i):
    op, sample = _sample(ops, i)
    fn, args, kwargs = _fn(op, sample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = torch_suite._translation(torch, fn, args, kwargs)
    assert _class(row) == _class(ENTRIES[i]), row.get("message")


def _alarm(signum, frame):
    raise torch_suite._Timeout("over the entry's time")


@pytest.mark.parametrize("i", CHECKED, ids=[f"{i}-{ENTRIES[i]['op']}" for i in CHECKED])
def test_the_full_check_of_an_opinfo_entry_gives_the_recorded_verdict(ops, i):
    op, sample = _sample(ops, i)
    fn, args, kwargs = _fn(op, sample)
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        signal.alarm(600)  # far past the entry's own 60 s: a hang fails here, never stalls the suite
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check = torch_suite._full_check(torch, fn, args, kwargs, 60)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert "internal error" not in check["status"], check
    assert check["status"] == ENTRIES[i]["check"]["status"], check
