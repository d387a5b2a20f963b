"""Griffe extension: render the `>>>` examples of docstrings as code blocks.

The library's docstrings put their doctest examples after an `Example:` line
at the docstring's own indentation (so that `pytest --doctest-modules` runs
them as they are). Markdown would read `>>>` as nested quotes; this wraps each
run of doctest lines (prompts, continuation lines and expected output, up to a
blank line) in a fenced `pycon` block before the docstring is rendered.
"""

import griffe


def fence_doctests(text):
    """`text` with every block of doctest lines inside a ```pycon fence."""
    out, block = [], []

    def flush():
        if block:
            indent = block[0][: len(block[0]) - len(block[0].lstrip())]
            out.append(f"{indent}```pycon")
            out.extend(block)
            out.append(f"{indent}```")
            block.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(">>>") or (block and stripped):
            block.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
