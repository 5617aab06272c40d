"""User case files: the @as_case decorator, and discovery of case files in folders (as pytest finds tests)."""

import textwrap

import jax.numpy as jnp
import pytest

import diffcheck
from diffcheck import cli

DECORATED = """
    import jax
    import jax.numpy as jnp
    import diffcheck

    @diffcheck.as_case(points={"tutorial": dict(w=2.2, b=0.0)}, tags=("mine",))
    def neuron_loss(w, b, x=1.1, y=1.0):
        '''The tutorial's neuron, written by a user.'''
        p = jax.nn.sigmoid(x * w + b)
        return -(y * jnp.log(p) + (1 - y) * jnp.log1p(-p))

    assert neuron_loss(2.2, 0.0) > 0  # still an ordinary function
"""

NESTED = """
    import jax.numpy as jnp
    from diffcheck import Case, as_case

    @as_case(wrt="W", points={"ones": dict(W=jnp.ones((2, 3)), x=jnp.arange(3.0))}, sample=None)
    def tanh_layer(W, x):
        return jnp.sum(jnp.tanh(W @ x) ** 2)

    cube = Case(name="cube", fn=lambda z: z**3, wrt="z", points={"p": dict(z=0.5)})
"""

IMPORTS_A_CASE = """
    from helper_cases import neuron_loss  # decorated where it is defined, not here
    from diffcheck import as_case

    @as_case(points={"p": dict(u=0.3)})
    def twice(u):
        return 2 * neuron_loss(u, 0.0)
"""

NEVER = "raise RuntimeError('this file must not be collected')\n"


def _tree(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_decorator_defines_a_case_with_defaults():
    @diffcheck.as_case(points={"p": dict(w=0.5, b=1.0)})
    def loss(w, b, x=2.0):
        """First line.

        More."""
        return jnp.sin(w * x + b)

    case = loss.__diffcheck_case__
    assert (case.name, case.wrt, case.description, case.fn) == ("loss", ("w", "b"), "First line.", loss)
    assert diffcheck.check_case(case, points=0).ok


# (what is in the folder, what is collected)
DISCOVERY = [
    ("case file patterns", {"a_cases.py": DECORATED, "sub/case_b.py": NESTED}, ["neuron_loss", "tanh_layer", "cube"]),
    ("cases.py", {"deep/er/cases.py": NESTED}, ["tanh_layer", "cube"]),
    (
        "other files are not imported",
        {"a_cases.py": DECORATED, "helpers.py": NEVER, "test_x.py": NEVER},
        ["neuron_loss"],
    ),
    ("_ and . are skipped", {"_b_cases.py": NEVER, "_private/case_c.py": NEVER, ".hidden/d_cases.py": NEVER}, []),
]


@pytest.mark.parametrize("files, names", [d[1:] for d in DISCOVERY], ids=[d[0] for d in DISCOVERY])
def test_discovery_in_folders(tmp_path, files, names):
    _tree(tmp_path, files)
    cases, errors = diffcheck.collect_cases(tmp_path)
    assert errors == []
    assert sorted(c.name for c in cases) == sorted(names)


def test_a_file_named_on_the_command_line_is_collected_whatever_its_name(tmp_path):
    _tree(tmp_path, {"anything.py": NESTED})
    assert [c.name for c in diffcheck.load_cases(tmp_path / "anything.py")] == ["tanh_layer", "cube"]


def test_an_imported_decorated_function_is_collected_once(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    _tree(tmp_path, {"helper_cases.py": DECORATED, "user_cases.py": IMPORTS_A_CASE})
    cases, errors = diffcheck.collect_cases(tmp_path)
    assert errors == [] and sorted(c.name for c in cases) == ["neuron_loss", "twice"]


def test_user_folder_end_to_end_through_the_cli(tmp_path, capsys):
    _tree(tmp_path, {"my_cases.py": DECORATED, "more/case_nets.py": NESTED, "notes.py": NEVER})
    assert cli.main(["list", str(tmp_path)]) == cli.OK
    listing = capsys.readouterr().out
    assert "neuron_loss  [mine]  The tutorial's neuron, written by a user." in listing
    assert cli.main(["run", str(tmp_path), "--points", "0"]) == cli.OK
    out = capsys.readouterr().out
    assert all(name in out for name in ("neuron_loss", "tanh_layer", "cube")) and "OK: 3 points" in out


def test_a_bad_decorated_case_is_named_and_the_others_still_run(tmp_path, capsys):
    bad = """
        from diffcheck import as_case

        @as_case(points={"p": dict(x=1.0)})
        def needs_w(w):
            return w * 2.0
    """
    _tree(tmp_path, {"bad_cases.py": bad, "good_cases.py": NESTED})
    assert cli.main(["run", str(tmp_path), "--points", "0"]) == cli.LOAD_ERROR
    out = capsys.readouterr().out
    assert "case 'needs_w', point 'p': no value for parameter(s) w" in out
    assert "cube" in out and "agree" in out
