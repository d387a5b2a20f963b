"""`tf.data` input pipelines over tokenized splits."""

import numpy as np
import tensorflow as tf

from attngen_keras.data import alphabet
from attngen_keras.data.cache import is_memory_mapped, release_pages


class RowGatherer:
    """Rows of a (memory-mapped) token array by index, for `tf.data`, with flat memory.

    Gathering from a `np.memmap` maps the pages it reads into this process
    (far more than the rows: the kernel maps the pages around each fault);
    they are released after every gather (`cache.release_pages`, about
    0.4 ms a batch), so the resident set stays flat however large the file.
    The file itself stays in the operating system's page cache.

    Example:

    >>> rows = RowGatherer(np.arange(6, dtype=np.uint8).reshape(3, 2))
    >>> rows(np.array([2, 0])).tolist()
    [[4, 5], [0, 1]]
    """

    def __init__(self, tokens):
        self.tokens = tokens
        self.mapped = is_memory_mapped(tokens)

    def __call__(self, indices):
        rows = np.ascontiguousarray(self.tokens[np.asarray(indices, dtype=np.int64)])
        if self.mapped:
            release_pages(self.tokens)
        return rows

    def tf_gather(self, indices):
        """`tf.numpy_function` around `__call__`: `(batch, length)` uint8."""
        rows = tf.numpy_function(self, [indices], tf.uint8, stateful=False)
        return tf.ensure_shape(rows, [None, self.tokens.shape[1]])


def make_tf_dataset(
    split,
    batch_size=128,
    *,
    shuffle=False,
    seed=0,
    reverse_complement=False,
    include_labels=True,
    prefetch=True,
):
    """Batches of one-hot DNA (and labels) from an `EncodedSplit`.

    Tokens stay `uint8` until after batching; one-hot encoding (and the
    optional reverse-complement augmentation) run once per batch, vectorized.
    Memory-mapped tokens (see `load_dataset(memory_map=...)`) are read batch
    by batch (`RowGatherer`) and shuffled by index (a seeded permutation
    per epoch): memory does not grow with the split.

    Args:
        split: an `EncodedSplit` (tokens `(n, length)`, labels `(n,)`).
        batch_size: batch size.
        shuffle: shuffle the whole split every epoch (seeded).
        seed: shuffle and augmentation seed.
        reverse_complement: with probability 1/2 per sequence, replace it by
            its reverse complement (only the real positions are reversed;
            padding stays on the right).
        include_labels: yield `(x, y)` pairs, else `x` only.
        prefetch: prefetch with `tf.data.AUTOTUNE`.

    Returns:
        A `tf.data.Dataset` of `x` with shape `(batch, length, 4)` float32
        (and `y` int32 `(batch,)`).

    Example:

    >>> import numpy as np
    >>> from attngen_keras.data import EncodedSplit, encode
    >>> tokens = np.stack([encode("ACGTACGTAC")] * 6)
    >>> split = EncodedSplit(tokens, np.arange(6) % 2, np.arange(6).astype(str))
    >>> x, y = next(iter(make_tf_dataset(split, 4, shuffle=True, reverse_complement=True)))
    >>> tuple(x.shape), tuple(y.shape)
    ((4, 10, 4), (4,))
    """
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)
    one_hot_table = tf.constant(alphabet.ONE_HOT_TABLE)
    complement = tf.constant(alphabet.COMPLEMENT_TOKEN.astype("int32"))
    pad = alphabet.PAD
    if is_memory_mapped(split.tokens):
        dataset = _memory_mapped_batches(split, batch_size, shuffle, seed, include_labels)
    else:
        tensors = (split.tokens, split.labels) if include_labels else (split.tokens,)
        dataset = tf.data.Dataset.from_tensor_slices(tensors)
        if shuffle:
            dataset = dataset.shuffle(max(len(split), 1), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size)
    # The batch index seeds the augmentation (stateless), so it is
    # reproducible for a given seed even with parallel map calls.
    dataset = dataset.enumerate()

    def encode(index, batch):
        tokens = tf.cast(batch[0], tf.int32)
        if reverse_complement:
            tokens = _random_reverse_complement(tokens, complement, pad, [seed, index])
        x = tf.gather(one_hot_table, tokens)
        return (x, *batch[1:]) if include_labels else x

    dataset = dataset.map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset


def _memory_mapped_batches(split, batch_size, shuffle, seed, include_labels):
    """Batches `(tokens, [labels])` gathered by index from a memory-mapped split."""
    n = len(split)
    rows = RowGatherer(split.tokens)
    labels = tf.constant(np.asarray(split.labels))
    if shuffle:  # a new seeded permutation for every pass
        indices = _reshuffling_indices(n, batch_size, seed)
    else:
        indices = tf.data.Dataset.range(n).batch(batch_size)

    def gather(batch):
        tokens = rows.tf_gather(batch)
        return (tokens, tf.gather(labels, batch)) if include_labels else (tokens,)

    return indices.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _reshuffling_indices(n, batch_size, seed):
    """Index batches of one pass, in a new seeded order each time the dataset is iterated."""
    counter = {"pass": 0}

    def order():
        epoch = counter["pass"]
        counter["pass"] += 1
        return np.random.default_rng([seed, epoch]).permutation(n)

    def generate():
        yield from np.array_split(order(), range(batch_size, n, batch_size))

    return tf.data.Dataset.from_generator(
        generate, output_signature=tf.TensorSpec([None], tf.int64)
    )


def _permutation(n, seed, epoch):
    seeds = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    # int32 indices where they fit: half the memory of a split-sized order, and
    # the same permutation as int64 ones (the shuffle does not depend on the dtype)
    dtype = tf.int32 if int(n) < 2**31 else tf.int64
    return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=dtype), seed=seeds)


def epoch_permutation(n, seed, epoch):
    """The order of `n` sequences in epoch `epoch`: a permutation seeded by `(seed, epoch)` alone.

    It depends on nothing else (not on how many epochs this process has run),
    so a resumed run sees the same order as an uninterrupted one.

    Example:

    >>> sorted(epoch_permutation(5, seed=0, epoch=3).tolist())
    [0, 1, 2, 3, 4]
    """
    return _permutation(int(n), int(seed), int(epoch)).numpy()


def make_epoch_stream(
    split,
    batch_size,
    *,
    seed=0,
    start_epoch=0,
    end_epoch=1,
    start_batch=0,
    reverse_complement=False,
):
    """Training batches of epochs `start_epoch`..`end_epoch - 1`, the first from batch `start_batch` on.

    Epoch `e` visits the split in the order `epoch_permutation(n, seed, e)`
    in batches of `batch_size` (the last one smaller); the reverse-complement
    augmentation of batch `j` of epoch `e` is seeded by `(seed, e, j)`. Every
    batch is thus a function of `(seed, e, j)` only: a run resumed at any
    batch continues exactly where the uninterrupted run would have been.

    Returns:
        A `tf.data.Dataset` of `(x, y)` with `x` `(batch, length, 4)` float32.
    """
    n = len(split)
    steps = -(-n // batch_size)
    if is_memory_mapped(split.tokens):
        gather_tokens = RowGatherer(split.tokens).tf_gather
    else:
        tokens = tf.constant(split.tokens)
        gather_tokens = lambda indices: tf.gather(tokens, indices)  # noqa: E731
    labels = tf.constant(np.asarray(split.labels))
    one_hot_table = tf.constant(alphabet.ONE_HOT_TABLE)
    complement = tf.constant(alphabet.COMPLEMENT_TOKEN.astype("int32"))

    def epoch_batches(epoch):
        order = _permutation(n, seed, epoch)
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate()
        return batches.map(lambda j, indices: (epoch, j, indices))

    stream = epoch_batches(tf.constant(start_epoch, tf.int64)).skip(start_batch)
    if end_epoch > start_epoch + 1:
        stream = stream.concatenate(
            tf.data.Dataset.range(start_epoch + 1, end_epoch).flat_map(epoch_batches)
        )

    def encode(epoch, j, indices):
        batch_tokens = tf.cast(gather_tokens(indices), tf.int32)
        if reverse_complement:
            batch_tokens = _random_reverse_complement(
                batch_tokens,
                complement,
                alphabet.PAD,
                [tf.constant(seed, tf.int64), epoch * steps + j],
            )
        return tf.gather(one_hot_table, batch_tokens), tf.gather(labels, indices)

    stream = stream.map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return stream.prefetch(tf.data.AUTOTUNE)


def make_step_stream(
    split, batch_size, *, seed=0, start_step=0, end_step=1, reverse_complement=False
):
    """Training batches `start_step`..`end_step - 1` of the endless sequence of seeded passes over `split`.

    Batch `p` is batch `p mod S` of pass `p div S` of `make_epoch_stream`
    (S = batches per pass), whatever the number of steps per training epoch:
    with `attngen train --steps-per-epoch N`, epoch `e` trains on batches
    `e * N`..`(e + 1) * N - 1`, the data order running on across epochs, and a
    resumed run continues the same sequence.

    Example:

    >>> import numpy as np
    >>> from attngen_keras.data import EncodedSplit, encode
    >>> split = EncodedSplit(np.stack([encode("ACGT")] * 10), np.arange(10) % 2, np.arange(10))
    >>> stream = make_step_stream(split, 4, start_step=2, end_step=7)  # 3 batches per pass
    >>> [len(y) for _, y in stream]
    [2, 4, 4, 2, 4]
    """
    per_pass = max(1, -(-len(split) // batch_size))
    start_epoch, start_batch = divmod(int(start_step), per_pass)
    end_epoch = max(start_epoch + 1, -(-int(end_step) // per_pass))
    stream = make_epoch_stream(
        split, batch_size, seed=seed, start_epoch=start_epoch, end_epoch=end_epoch,
        start_batch=start_batch, reverse_complement=reverse_complement,
    )  # fmt: skip
    return stream.take(max(0, int(end_step) - int(start_step)))


def _random_reverse_complement(tokens, complement, pad, seed):
    lengths = tf.reduce_sum(tf.cast(tokens != pad, tf.int32), axis=1)
    flipped = tf.reverse_sequence(tokens, lengths, seq_axis=1, batch_axis=0)
    flipped = tf.gather(complement, flipped)
    seed = tf.cast(tf.stack(seed), tf.int64)
    choose = tf.random.stateless_uniform([tf.shape(tokens)[0], 1], seed=seed) < 0.5
    return tf.where(choose, flipped, tokens)


def reverse_complement_tokens(tokens):
    """Reverse complement of `(n, length)` tokens, padding kept on the right.

    Example:

    >>> import numpy as np
    >>> from attngen_keras.data.alphabet import encode, decode, PAD
    >>> t = np.concatenate([encode("AACG"), [PAD]])[None]
    >>> decode(reverse_complement_tokens(t)[0])
    'CGTT'
    """
    tokens = tf.cast(tokens, tf.int32)
    lengths = tf.reduce_sum(tf.cast(tokens != alphabet.PAD, tf.int32), axis=1)
    flipped = tf.reverse_sequence(tokens, lengths, seq_axis=1, batch_axis=0)
    return tf.gather(alphabet.COMPLEMENT_TOKEN.astype("int32"), flipped).numpy()
