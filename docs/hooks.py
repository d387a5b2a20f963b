"""MkDocs hooks: the command reference from the CLI's own parser, and the result figures.

`reference/cli.md` is rendered from `attngen_keras.cli._parser()`: one section
per subcommand with its `--help` text. It is committed, so that the guides'
links to it also work on GitHub; `python docs/hooks.py` rewrites it, and the
build fails (strict) while it differs from the parser, as does
`tests/test_docs.py`. The home page and the
contributing page are `README.md` and `CONTRIBUTING.md`, their links rewritten
for the site. The PNGs under `benchmarks/results/` are added to the site as
`assets/results/...`, so pages show the figures the benchmarks wrote, without
copies in `docs/`. The pages link the figures where they are in the
repository (`../../benchmarks/results/...` from `docs/results/`), so that
they also show on GitHub; `on_page_markdown` points those links at the
site's copies.
"""

import argparse
import os
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
HELP_WIDTH = "80"  # fits the code blocks of a page at 1280 px
# Pages written by other work in progress: while one is absent the site gets a
# stub, so that `mkdocs build --strict` passes; the real page replaces it.
PENDING_PAGES = {
    "guides/genome.md": "Genome scanning and variants",
    "results/genome.md": "Genome scanning",
    "results/scale.md": "Scale",
    "results/backends.md": "Backends",
}


def _subcommands(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                yield name, helps.get(name, ""), subparser


def _defaults_table(parser):
    """Markdown table of the options' defaults and choices, read from the parser."""
    rows = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._HelpAction):
            continue
        default = action.default
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            default = "off" if default is False else "on"
        elif default is None:
            default = "required" if action.required else "-"
        elif isinstance(default, (list, tuple)):
            default = " ".join(str(d) for d in default)
        choices = ", ".join(str(c) for c in action.choices) if action.choices else ""
        name = ", ".join(f"`{o}`" for o in action.option_strings)
        rows.append(f"| {name} | `{default}` | {choices} |")
    if not rows:
        return []
    return ["| option | default | choices |", "|---|---|---|", *rows, ""]


def cli_reference():
    """Markdown for every `attngen` subcommand, from the argparse parser."""
    saved = {name: os.environ.get(name) for name in ("COLUMNS", "NO_COLOR", "PYTHON_COLORS")}
    os.environ["COLUMNS"] = HELP_WIDTH  # argparse wraps help at the terminal width
    os.environ["NO_COLOR"], os.environ["PYTHON_COLORS"] = "1", "0"  # Python 3.14 colours help
    try:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))  # the CLI of the tree being built
        from attngen_keras.cli import _parser

        parser = _parser()
        commands = list(_subcommands(parser))
        lines = [
            "# Command reference",
            "",
            "Generated from the parser of `attngen` itself (`attngen_keras.cli`; "
            "`python docs/hooks.py` rewrites this file): each section is exactly what "
            "`attngen COMMAND --help` prints. The guides explain what the commands do; "
            "this page lists every option.",
            "",
            "| command | what it does |",
            "|---|---|",
        ]
        lines += [f"| [`{name}`](#attngen-{name}) | {text or ''} |" for name, text, _ in commands]
        lines += ["", "```text", parser.format_help().rstrip(), "```", ""]
        for name, _, subparser in commands:
            lines += [
                f"## attngen {name}",
                "",
                "```text",
                subparser.format_help().rstrip(),
                "```",
                "",
                *_defaults_table(subparser),
            ]
        return "\n".join(lines)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def site_page(name):
    """`README.md` or `CONTRIBUTING.md` with its links pointed at the site's pages."""
    text = (ROOT / name).read_text(encoding="utf-8")
    text = re.sub(r"\]\(docs/", "](", text)
    text = re.sub(r"\]\(benchmarks/results/", "](assets/results/", text)
    text = text.replace("](CONTRIBUTING.md)", "](contributing.md)")
    return text.replace("](README.md)", "](index.md)")


CLI_PAGE = ROOT / "docs" / "reference" / "cli.md"


def on_files(files, config):
    import logging

    files.append(File.generated(config, "index.md", content=site_page("README.md")))
    files.append(File.generated(config, "contributing.md", content=site_page("CONTRIBUTING.md")))
    if not CLI_PAGE.exists() or CLI_PAGE.read_text(encoding="utf-8") != cli_reference():
        logging.getLogger("mkdocs.plugins.attngen").warning(
            "docs/reference/cli.md differs from the CLI's parser: run `python docs/hooks.py`"
        )
    for path, title in PENDING_PAGES.items():
        if files.get_file_from_path(path) is None:
            stub = f"# {title}\n\nThis page is not written yet.\n"
            files.append(File.generated(config, path, content=stub))
    for png in sorted(RESULTS.rglob("*.png")):
        rel = png.relative_to(RESULTS).as_posix()
        files.append(File.generated(config, f"assets/results/{rel}", abs_src_path=str(png)))
    return files


def site_figure_links(markdown, src_uri):
    """Links from a page under `docs/` to `benchmarks/results/`, pointed at `assets/results/`.

    Example:

    >>> site_figure_links("![a](../../benchmarks/results/x/a.png)", "results/p.md")
    '![a](../assets/results/x/a.png)'
    """
    depth = src_uri.count("/")
    repository = "../" * (depth + 1) + "benchmarks/results/"
    site = "../" * depth + "assets/results/"
    return markdown.replace("](" + repository, "](" + site)


def on_page_markdown(markdown, page, config, files):
    return site_figure_links(markdown, page.file.src_uri)


if __name__ == "__main__":
    CLI_PAGE.write_text(cli_reference(), encoding="utf-8")
    print(f"wrote {CLI_PAGE}")
