"""mkdocs hooks: pages generated from the code at build time, so that they cannot go stale.

* cases.md — the built-in case library, from `diffcheck.load_cases()`.
* `<!-- diffcheck-help: run -->` in a page — the `--help` of that subcommand, from the CLI's parser.
"""

from __future__ import annotations

import re

from mkdocs.structure.files import File

_HELP = re.compile(r"<!-- diffcheck-help: (\w*) -->")


def on_files(files, config):
    files.append(File.generated(config, "cases.md", content=case_library()))
    return files


def on_page_markdown(markdown, page, config, files):
    return _HELP.sub(lambda m: "```text\n" + cli_help(m.group(1)) + "```", markdown)


def cli_help(command: str) -> str:
    """`python -m diffcheck [command] --help`, wrapped at 100 columns whatever the terminal."""
    import os

    from diffcheck import cli

    parser = cli._parser()
    if command:
        parser = parser._subparsers._group_actions[0].choices[command]
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help()
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def case_library() -> str:
    from diffcheck import load_cases

    cases = load_cases()
    lines = [
        "# The case library",
        "",
        f"The {len(cases)} built-in cases, generated from the library itself when these pages are built "
        "(`python -m diffcheck list` prints the same). Run one with `python -m diffcheck run --case NAME`, "
        "a family with `--tag TAG`.",
        "",
    ]
    tags = sorted({t for c in cases for t in c.tags})
    lines += ["Tags: " + ", ".join(f"`{t}` ({sum(t in c.tags for c in cases)})" for t in tags), ""]
    by_module = {}
    for case in cases:
        module = case.source.rsplit("/", 1)[-1].removesuffix(".py") if case.source else "?"
        by_module.setdefault(module, []).append(case)
    for module, group in by_module.items():
        lines += [f"## {module}", "", "| case | differentiated in | points | orders | tags | description |"]
        lines += ["|---|---|---|---|---|---|"]
        for c in group:
            points = ", ".join(c.points) + (" + random" if c.sample is not None else "")
            row = [
                f"`{c.name}`",
                ", ".join(f"`{w}`" for w in c.wrt),
                _cell(points),
                ", ".join(map(str, c.orders)),
                ", ".join(c.tags),
                _cell(c.description),
            ]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)
