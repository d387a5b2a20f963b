"""Progress bars: redrawn in place on a terminal, whole lines in a log file."""

import io

from attngen_keras.progress import LOG_INTERVAL_SECONDS, progress_bar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_file_gets_whole_lines_not_carriage_returns():
    log = io.StringIO()
    with progress_bar(desc="scanning g.fa", unit=" windows", file=log, mininterval=1.0) as bar:
        # also when the caller asks for more, and the monitor thread's refresh too
        assert bar.mininterval == bar.maxinterval == LOG_INTERVAL_SECONDS
        for _ in range(5):
            bar.update(100)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("scanning g.fa: 0 windows") and lines[-1].startswith(
        "scanning g.fa: 500 windows"
    )


def test_a_terminal_gets_the_usual_bar():
    terminal = _Terminal()
    with progress_bar(range(3), desc="scoring", file=terminal) as bar:
        assert bar.mininterval < LOG_INTERVAL_SECONDS
        list(bar)
    assert "\r" in terminal.getvalue()
