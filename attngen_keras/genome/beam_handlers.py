"""The Apache Beam pieces of `--runner beam` (this module imports `apache_beam`: load it through `genome.beam`).

Beam's stock `TFModelHandlerTensor` cannot load a Keras-3 export, so these
`ModelHandler`s load the model by path on each worker (`Scorer.load`: the
exported SavedModel's `serving_default`, or a run directory through the same
in-graph preprocessing) and feed it raw window strings. Each element is a
whole batch of windows (or alleles), so Beam's per-element cost is paid once
per batch, not once per window.
"""

import threading

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler

from attngen_keras.genome.reference import open_fasta
from attngen_keras.genome.scoring import Scorer


class WindowTasks(beam.DoFn):
    """`(index, chrom, first_start, count)` -> `((index, chrom), [(start, window), ...], skipped_n)`.

    Reads the task's sequence from the indexed FASTA on the worker and drops
    windows with too many N's (as the local `Tiler`).
    """

    def __init__(self, paths, length, stride, max_n):
        self.paths, self.length, self.stride, self.max_n = paths, length, stride, max_n

    def setup(self):
        self.fasta = open_fasta(self.paths)

    def process(self, task):
        index, chrom, first, count = task
        end = first + (count - 1) * self.stride + self.length
        sequence = self.fasta.fetch(chrom, first, end).encode()
        items, skipped = [], 0
        for k in range(count):
            window = sequence[k * self.stride : k * self.stride + self.length]
            if window.count(b"N") + window.count(b"n") > self.max_n:
                skipped += 1
            else:
                items.append((first + k * self.stride, window))
        yield (index, chrom), items, skipped


class WriteTaskFile(beam.DoFn):
    """Writes each `(index, lines)` element to its own file, `beam.task_file(prefix, index)`.

    One file per task, so that the launcher reads the results back in task
    order without holding them all. A retried task rewrites its file whole.
    """

    def __init__(self, prefix):
        self.prefix = prefix

    def process(self, element):
        import os

        from apache_beam.io.filesystems import FileSystems

        from attngen_keras.genome.beam import task_file

        index, lines = element
        if "://" not in self.prefix and not os.path.isdir(os.path.dirname(self.prefix)):
            return  # a local run directory removed: the launcher gave the run up (Ctrl-C)
        with FileSystems.create(task_file(self.prefix, index)) as handle:
            handle.write("".join(line + "\n" for line in lines).encode())


class WindowModelHandler(ModelHandler):
    """Scores `(key, [(start, window), ...], skipped)` elements: yields `(key, [(start, probs)], skipped)`."""

    def __init__(self, model_path, both_strands=False):
        self._path, self._both = str(model_path), bool(both_strands)

    def load_model(self):
        return Scorer.load(self._path)

    def run_inference(self, batch, model, inference_args=None):
        for key, items, skipped in batch:
            probs = model.probabilities([w for _, w in items], self._both)
            yield key, [(start, row) for (start, _), row in zip(items, probs)], skipped

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}  # an element is already a batch


class VariantModelHandler(ModelHandler):
    """Scores `(index, alleles)` elements (`variants.score_alleles`): yields `(index, [result dict, ...])`."""

    def __init__(self, model_path, paths, both_strands=False, target_class=None, max_n=None):
        self._path, self._paths, self._both = str(model_path), paths, bool(both_strands)
        self._target_class, self._max_n = target_class, max_n

    def load_model(self):
        return _VariantModel(Scorer.load(self._path, self._target_class), self._paths)

    def run_inference(self, batch, model, inference_args=None):
        from attngen_keras.genome.variants import score_alleles

        for index, alleles in batch:
            yield (
                index,
                score_alleles(
                    model.scorer, model.fasta, model.sizes, alleles, self._both, self._max_n
                ),
            )

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}


class _VariantModel:
    """The model and the reference a worker scores alleles with (Beam keeps it by weak reference).

    RunInference shares one loaded model among a process's worker threads (the
    local runner's two, say); a TensorFlow function may be called from several
    threads at once, but a pysam `FastaFile` may not, so each thread opens
    its own.
    """

    def __init__(self, scorer, paths):
        self.scorer, self._paths = scorer, paths
        self._local = threading.local()
        fasta = self.fasta
        self.sizes = dict(zip(fasta.references, fasta.lengths))

    @property
    def fasta(self):
        """This thread's handle on the reference."""
        if getattr(self._local, "fasta", None) is None:
            self._local.fasta = open_fasta(self._paths)
        return self._local.fasta
