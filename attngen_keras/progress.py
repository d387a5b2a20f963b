"""Progress bars for long work: tqdm on a terminal, one plain line a minute in a log file.

On a terminal a bar redraws itself in place. Written to a file (a batch job's
log, `2> run.log`), those redraws would pile up as one long line of
carriage returns, so there the bar prints a complete line at most once a
minute, and its final state.
"""

import sys

from tqdm.auto import tqdm as auto_tqdm
from tqdm.std import tqdm

LOG_INTERVAL_SECONDS = 60.0


class _Lines:
    """A stream for tqdm that turns each redraw into its own line (for files, not terminals)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        text = text.replace("\r", "").rstrip()
        if text:
            self._stream.write(text + "\n")

    def flush(self):
        self._stream.flush()


def progress_bar(iterable=None, **kwargs):
    """`tqdm(iterable, **kwargs)`, with whole lines at most once a minute when stderr is not a terminal.

    Args:
        iterable: what to iterate, if anything (else call `update`).
        **kwargs: `tqdm` arguments (`desc`, `unit`, `total`, `disable`, ...).

    Example:

    >>> for _ in progress_bar(range(3), desc="scoring", disable=True):
    ...     pass
    """
    if any(c.__module__ == "tqdm.notebook" for c in auto_tqdm.__mro__):  # in a notebook: its widget
        return auto_tqdm(iterable, **kwargs)
    stream = kwargs.pop("file", None) or sys.stderr
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        # both: tqdm's monitor thread would otherwise refresh it every `maxinterval` (10 s)
        for name in ("mininterval", "maxinterval"):
            kwargs[name] = max(float(kwargs.get(name) or 0.0), LOG_INTERVAL_SECONDS)
        kwargs.setdefault("ascii", True)
        stream = _Lines(stream)
    return tqdm(iterable, file=stream, **kwargs)
