"""Small file writers, the CLI run in-process and a training interrupter, shared by the tests."""

import sys
from pathlib import Path

import keras


def write_fasta(path, records):
    path = Path(path)
    lines = []
    for name, seq in records:
        lines += [f">{name} description", seq[: len(seq) // 2], seq[len(seq) // 2 :]]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        import gzip

        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_full_sequence_dir(root, data, split_sizes=None):
    """Writes {train,test}/<class>/<id>.txt from a {split: [(id, label, seq)]}."""
    root = Path(root)
    for split, rows in data.items():
        for record_id, label, seq in rows:
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{record_id}.txt").write_text(seq)
    return root


class CliResult:
    """What `run_cli` returns: the fields of a `subprocess.CompletedProcess` the tests read."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_cli(capsys, *args):
    """`attngen ARGS` in this process (the console script's `main`), output captured by capsys.

    For tests of what a command does and prints; tests of what a separate
    process sees (start-up noise, SIGKILL, another working directory) keep a
    subprocess. Spares each call TensorFlow's start-up (5-10 s on 2 cores).
    """
    from attngen_keras.cli import main

    capsys.readouterr()  # drop what earlier code printed
    try:
        returncode = main([str(a) for a in args])
    except SystemExit as exit:  # argparse errors and `raise SystemExit(message)`, as Python exits
        returncode = exit.code
        if returncode is None:
            returncode = 0
        elif not isinstance(returncode, int):
            print(returncode, file=sys.stderr)
            returncode = 1
    captured = capsys.readouterr()
    return CliResult(returncode, captured.out, captured.err)


class StopAtStep(keras.callbacks.Callback):
    """Interrupts training after global step `at` (a Ctrl-C in the middle of an epoch)."""

    def __init__(self, at):
        super().__init__()
        self.at, self.done = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done == self.at:
            raise KeyboardInterrupt("interrupted mid-epoch")


_BACKGROUND = []


def start_in_background(request, test_name, function, *args):
    """Queues `function(*args)` on a background thread now, if the test `test_name` is selected.

    For work that waits on subprocesses (each fresh interpreter pays
    TensorFlow's start-up, 5-10 s on 2 cores): a module fixture queues it
    before the module's first test, so it runs on the other core while the
    in-process tests run. One thread for the session, so one such job at a
    time. Returns a Future (None when the test is not selected): the test
    calls `.result()`, which waits and returns the function's value or raises
    what it raised (a failed assert included).
    """
    from concurrent.futures import ThreadPoolExecutor

    if not any(item.name.split("[")[0] == test_name for item in request.session.items):
        return None
    if not _BACKGROUND:
        _BACKGROUND.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="background"))
    return _BACKGROUND[0].submit(function, *args)
