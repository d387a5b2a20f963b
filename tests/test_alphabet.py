import numpy as np
import pytest

from attngen_keras.data import DataError, decode, encode, one_hot
from attngen_keras.data.alphabet import COMPLEMENT_TOKEN, PAD, SYMBOLS


def test_case_insensitive_and_u_as_t():
    assert encode("acgtU").tolist() == encode("ACGTT").tolist() == [0, 1, 2, 3, 3]


def test_one_hot_bases_ambiguity_and_padding():
    table = one_hot(np.array([0, 1, 2, 3, SYMBOLS.index("N"), SYMBOLS.index("R"), PAD]))
    np.testing.assert_array_equal(table[:4], np.eye(4))
    np.testing.assert_allclose(table[4], [0.25] * 4)
    np.testing.assert_allclose(table[5], [0.5, 0, 0.5, 0])
    np.testing.assert_array_equal(table[6], [0, 0, 0, 0])
    # every real symbol sums to 1, so the validity mask can be derived from it
    np.testing.assert_allclose(one_hot(np.arange(PAD)).sum(1), 1.0)


def test_complement_is_an_involution_matching_iupac():
    assert np.array_equal(COMPLEMENT_TOKEN[COMPLEMENT_TOKEN], np.arange(PAD + 1))
    assert decode(COMPLEMENT_TOKEN[encode("ACGTRYKMBDHVNSW")]) == "TGCAYRMKVHDBNSW"


def test_invalid_character_names_file_record_and_position():
    with pytest.raises(DataError) as info:
        encode("ACGXTZ", file="in.fa", record="chr1:5")
    message = str(info.value)
    assert "in.fa" in message and "chr1:5" in message
    assert "'X' at position 4" in message and "2 invalid" in message


def test_empty_and_non_ascii_sequences():
    with pytest.raises(DataError, match="empty sequence"):
        encode("", file="f", record="r")
    with pytest.raises(DataError, match="position 3"):
        encode("ACé", file="f", record="r")


def test_one_hot_and_from_sequences_name_bad_input():
    from attngen_keras.data.containers import EncodedSplit

    with pytest.raises(
        ValueError, match=r"tokens must be in 0-15 \(see encode\), got values 0-200"
    ):
        one_hot(np.array([0, 200], np.uint8))
    with pytest.raises(ValueError, match="tokens must be integers"):
        one_hot(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"got one string \(wrap it: \[sequence\]\)"):
        EncodedSplit.from_sequences("ACGT", [0, 0, 0, 0], 4)
    assert one_hot(np.zeros((0, 5), np.uint8)).shape == (0, 5, 4)
    # its errors name its own arguments, not the command line's options
    with pytest.raises(DataError, match=r"record '0': sequence of length 8 is longer than length 4 "
                       r".*raise length or pass crop='left', 'center' or 'right'$"):  # fmt: skip
        EncodedSplit.from_sequences(["ACGTACGT"], [0], 4)
