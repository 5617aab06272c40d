"""Writes docs/primitives.md: every JAX primitive the exact method knows, from its record.

    python -m benchmarks.primitives            # rewrites docs/primitives.md
    python -m benchmarks.primitives --check    # exit 1 when the page is stale

The page is generated from `diffcheck._primitives` (the records, the interpreted control flow, the
call primitives and the reasons for the untranslated ones), so it cannot say more than the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from diffcheck import _primitives as records

PAGE = Path(__file__).resolve().parent.parent / "docs" / "primitives.md"

HOW = {
    records.Form.ELEMENTWISE: "closed form, element by element",
    records.Form.ARRAY: "closed form on whole arrays (explicit sums, products, max)",
    records.Form.LOCAL: "local piece: exact on the piece around the point, its boundary a kink",
    records.Form.MOVE: "move: JAX moves element indices, the indices pick the expressions",
}


def page() -> str:
    lines = [
        "# JAX primitives",
        "",
        "How the exact method writes each JAX primitive in SymPy. Generated from the primitive records",
        "(`diffcheck/_primitives.py`) by `python -m benchmarks.primitives`; the primitive table in",
        "`tests/test_symbolic.py` checks every record's value and gradient against JAX's.",
        "",
        "- **closed form**: a SymPy expression valid everywhere, differentiated by SymPy.",
        "- **local piece**: the primitive is piecewise (a sort's permutation, argmax's index, a cast to",
        "  an integer, `rem`'s quotient, a branch): at the point checked it is one smooth piece, and the",
        "  translation is that piece, exactly. The expressions whose sign change ends the piece (a tie,",
        "  a threshold, an integer boundary) are carried along and reported as kinks.",
        "- **implicit equations** (eigh, svd: no closed form beyond 2×2): each output is a node y(a)",
        "  defined by equations F(y, a) = 0 written in SymPy, its value solved by mpmath at the working",
        "  precision, its derivative the implicit function theorem, ∂y/∂a = −F_y⁻¹·F_a, with F_y and",
        "  F_a SymPy's derivatives of the equations (again an implicit node, so every order works).",
        "- **move**: the primitive only moves elements; JAX runs it on arrays of element indices.",
        "- **integer results**: any primitive whose result is an integer computed from the parameters",
        "  (integer division, a cast, an index) is the constant it is at the point, computed by JAX on",
        "  the values there; the guards of its operands go with it.",
        "- **complex step**: whether JAX's complex version is the analytic continuation of the real",
        "  function, so that the complex step may vote on a program that uses it.",
        "",
        "None of these uses JAX's derivative rules: SymPy differentiates the translation.",
        "",
        f"## Translated primitives ({len(records.PRIMITIVES)})",
        "",
        "| primitive | translated how | complex step |",
        "|---|---|---|",
    ]
    for name in sorted(records.PRIMITIVES):
        record = records.PRIMITIVES[name]
        analytic = "analytic" if record.analytic else "not analytic"
        lines.append(f"| `{name}` | {records.HOW.get(name, HOW[record.form])} | {analytic} |")
    lines += ["", "## Control flow, run by the translator", "", "| primitive | translated how |", "|---|---|"]
    lines += [f"| `{name}` | {how} |" for name, how in sorted(records.INTERPRETED.items())]
    lines += [
        "",
        "## Calls",
        "",
        "These hold a jaxpr and compute nothing of their own: the translator runs the jaxpr (a",
        "`custom_jvp`/`custom_vjp` function's primal, never its rule): "
        + ", ".join(f"`{name}`" for name in sorted(records.CALLS))
        + ".",
        "",
        "## Not translated",
        "",
        "A program that uses one of these gets no exact reference; the report says so, naming the",
        "primitive and the reason. Any other primitive not listed on this page is untranslated too.",
        "",
        "| primitive | why |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {why} |" for name, why in sorted(records.UNTRANSLATED.items())]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = page()
    if "--check" in argv:
        stale = not PAGE.exists() or PAGE.read_text() != text
        print(f"{PAGE} is {'stale' if stale else 'up to date'}")
        return int(stale)
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
