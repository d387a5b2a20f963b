"""`tf.data` input pipelines over tokenized splits."""

import tensorflow as tf

from attngen_keras.data import alphabet


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

    >>> ds = make_tf_dataset(dataset["train"], 64, shuffle=True)  # doctest: +SKIP
    """
    one_hot_table = tf.constant(alphabet.ONE_HOT_TABLE)
    complement = tf.constant(alphabet.COMPLEMENT_TOKEN.astype("int32"))
    pad = alphabet.PAD
    tensors = (split.tokens, split.labels) if include_labels else (split.tokens,)
    dataset = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle:
        dataset = dataset.shuffle(max(len(split), 1), seed=seed, reshuffle_each_iteration=True)
    # The batch index seeds the augmentation (stateless), so it is
    # reproducible for a given seed even with parallel map calls.
    dataset = dataset.batch(batch_size).enumerate()

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


def _permutation(n, seed, epoch):
    seeds = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=seeds)


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
    tokens = tf.constant(split.tokens)
    labels = tf.constant(split.labels)
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
        batch_tokens = tf.cast(tf.gather(tokens, indices), tf.int32)
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
