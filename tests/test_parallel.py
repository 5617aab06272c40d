"""Cases in worker processes, on any executor, and on a Dask cluster: the same report as a serial run."""

import concurrent.futures
import json
import textwrap

import pytest
from samples import without_timings

from diffcheck import Case, check_case, cli, collect_cases
from diffcheck.errors import UsageError
from diffcheck.parallel import CaseId, check_cases, run_cases

USER_CASES = """
    import jax.numpy as jnp
    from diffcheck import Case

    cube = Case(name="cube", fn=lambda x: jnp.sum(x**3), wrt="x", sample=lambda rng: dict(x=rng.normal(size=3)))
"""


def _json(report):
    return without_timings(report.to_dict())


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Two library cases and one from a user's case file (its CaseId is a path)."""
    path = tmp_path_factory.mktemp("cases") / "mine.py"
    path.write_text(textwrap.dedent(USER_CASES))
    library, _ = collect_cases()
    mine, errors = collect_cases(path)
    assert not errors
    return [c for c in library if c.name in ("sigmoid_bce", "chain_sin_exp_square")] + mine


@pytest.fixture(scope="module")
def serial(cases):
    return _json(check_cases(cases, points=1, seed=3))


def test_case_ids_name_the_library_module_or_the_file(cases):
    ids = [CaseId.of(c) for c in cases]
    assert ids[0].module.startswith("diffcheck.cases.") and ids[0].path is None
    assert ids[-1].module is None and ids[-1].path.endswith("mine.py")
    assert [i.load().name for i in ids] == [c.name for c in cases]
    assert CaseId.of(Case(name="inline", fn=lambda x: x, wrt="x", points={"p": dict(x=1.0)})) is None


def test_worker_processes_give_the_serial_report(cases, serial):
    assert _json(check_cases(cases, jobs=2, points=1, seed=3)) == serial


def test_any_executor_gives_the_serial_report(cases, serial):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert _json(check_cases(cases, executor=pool, points=1, seed=3)) == serial


def test_dask_cluster_gives_the_serial_report(cases, serial):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        report = check_cases(cases, scheduler=cluster.scheduler_address, points=1, seed=3)
    assert _json(report) == serial


def test_cli_jobs_writes_the_serial_json(tmp_path):
    argv = ["run", "--case", "sigmoid_bce", "--case", "tensor_ranks", "--points", "0"]
    runs = []
    for extra in ([], ["--jobs", "2"]):
        target = tmp_path / f"r{len(runs)}.json"
        assert cli.main([*argv, *extra, "--json", str(target)]) == cli.OK
        runs.append(without_timings(json.loads(target.read_text())))
    assert runs[0] == runs[1]


def test_a_case_that_cannot_travel_fails_alone(cases):
    # Made in code with a lambda: a process pool cannot pickle it; the other cases still run.
    local = Case(name="local", fn=lambda x: x**2, wrt="x", points={"p": dict(x=2.0)})
    results = list(run_cases([local, cases[0]], jobs=2, points=0))
    assert [c.name for c, _ in results] == ["local", cases[0].name]
    (point,) = results[0][1].points
    assert point.case == "local" and "the worker failed" in point.error
    assert results[1][1].ok and results[1][1].points


SCRIPT = """
    import jax.numpy as jnp
    import diffcheck

    def tanh_squared(x):
        return jnp.sum(jnp.tanh(x) ** 2)

    if __name__ == "__main__":
        case = diffcheck.Case("tanh_squared", tanh_squared, wrt="x", points={"p": {"x": [0.3, -0.2]}})
        report = diffcheck.check_cases([case, case], jobs=2)
        print(report.ok, len(report.points), report.errors)
"""


def test_cases_made_in_a_script_are_checked_in_worker_processes(tmp_path):
    # Its function lives in the script's __main__: each worker imports the script as spawn does.
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "2", "()"]


def test_a_case_missing_on_the_worker_is_reported(tmp_path):
    report = check_cases([], jobs=2)
    assert report.ok and not report.points
    gone = CaseId("nothing_here", path=str(tmp_path / "gone.py"))
    from diffcheck.parallel import check_one

    (point,) = check_one(gone, {}).points
    assert point.case == "nothing_here" and "gone.py" in point.error


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(jobs=0), "jobs must be a whole number"),
        (dict(jobs=2, scheduler="tcp://127.0.0.1:1"), "at most one of"),
        (dict(jobs=2, executor=concurrent.futures.ThreadPoolExecutor(1)), "at most one of"),
    ],
)
def test_conflicting_or_bad_options_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        list(run_cases([], **options))


def test_cli_rejects_jobs_with_scheduler_and_zero_jobs(capsys):
    assert cli.main(["run", "--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"]) == cli.USAGE_ERROR
    assert "not both" in capsys.readouterr().err
    assert cli.main(["run", "--jobs", "0"]) == cli.USAGE_ERROR


def test_check_case_and_check_cases_agree_for_one_case(cases):
    one = cases[-1]
    assert _json(check_cases([one], points=2)) == _json(check_case(one, points=2))


def test_worker_processes_share_the_cache_folder_and_its_bound(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("DIFFCHECK_CACHE_DIR", str(folder))
    monkeypatch.setenv("DIFFCHECK_EAGER", "0")  # the workers compile, as for a large problem
    path = tmp_path / "mine.py"
    path.write_text(textwrap.dedent(USER_CASES))
    assert cli.main(["run", str(path), "--points", "1", "--jobs", "2"]) == cli.OK
    entries = {p.name for p in folder.iterdir()}
    programs = {e.removesuffix("-cache") for e in entries if e.endswith("-cache")}
    assert any(
        p.startswith("jit_value_and_jacobian-") for p in programs
    )  # compiled in a worker: this process checks nothing
    assert {e.removesuffix("-atime") for e in entries if e.endswith("-atime")} == programs
