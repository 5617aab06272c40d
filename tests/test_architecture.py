"""The shape of the package: its public face, one direction of imports, SymPy kept to the exact method."""

import ast
import importlib
from pathlib import Path

import pytest

import diffcheck

PACKAGE = Path(diffcheck.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")

#: The modules that may import SymPy or mpmath: the exact method (translation, graph evaluation,
#: its driver, the primitive records), the kink analysis, and the two front ends that take SymPy
#: expressions from the user (a formula, `Case.from_sympy`).
SYMPY_ALLOWED = {
    "_primitives",
    "_rules",
    "_structured",
    "_linalg",
    "_dot",
    "_translate",
    "_graph",
    "_rows",
    "_gradient",
    "_nodes",
    "_exact",
    "_kinks",
    "_precision",
    "formula",
    "case",
}


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(the diffcheck modules `module` imports, anywhere in it — inside functions too — and the
    other packages it imports)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    ours, theirs = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            ours.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and node.module:
            top, _, rest = node.module.partition(".")
            (ours.add(rest.split(".")[0]) if top == "diffcheck" and rest else theirs.add(top))
        elif isinstance(node, ast.Import):
            theirs.update(alias.name.split(".")[0] for alias in node.names)
    return ours & set(MODULES), theirs


@pytest.mark.parametrize("name", diffcheck.__all__)
def test_every_public_name_imports(name):
    assert getattr(diffcheck, name) is not None


def test_the_record_types_a_report_holds_are_public():
    fields = diffcheck.PointResult.__dataclass_fields__
    assert "directional" in fields and diffcheck.DirectionalTest.__name__ in diffcheck.__all__


def test_no_import_cycle_among_diffcheck_modules():
    graph = {m: _imports(m)[0] - {m} for m in MODULES}
    state, cycle = {}, []

    def visit(m, path):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycle.append(path + [m, n])
            elif n not in state:
                visit(n, path + [m])
        state[m] = "done"

    for m in MODULES:
        if m not in state:
            visit(m, [])
    assert not cycle, " → ".join(cycle[0])


def test_only_the_exact_method_and_the_kinks_import_sympy():
    users = {m for m in MODULES if _imports(m)[1] & {"sympy", "mpmath"}}
    assert users <= SYMPY_ALLOWED, sorted(users - SYMPY_ALLOWED)


#: Modules that are one table, one record per entry, and may be long for it.
TABLES = {
    "_aten": "one record per core ATen op (the torch program's translation to JAX)",
}


def test_modules_stay_small():
    sizes = {m: len((PACKAGE / f"{m}.py").read_text().splitlines()) for m in MODULES if m not in TABLES}
    assert max(sizes.values()) <= 700, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


def test_the_pipeline_reads_as_the_data_path():
    source = (PACKAGE / "_pipeline.py").read_text()
    body = source[source.index("def check_point(") :]
    steps = ["backend.methods(", "_exact(", "_compare(", "_record("]
    positions = [body.index(s) for s in steps]
    assert positions == sorted(positions)


def test_every_primitive_record_is_importable_and_complete():
    primitives = importlib.import_module("diffcheck._primitives")
    for name, record in primitives.PRIMITIVES.items():
        assert (record.translate is None) == (record.form is primitives.Form.MOVE), name
        assert isinstance(record.analytic, bool), name
