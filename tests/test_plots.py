"""The PNG plots say what they show: whole epochs, what the training loss holds, the colour of each base,
the order of the k-mer ranking."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from attngen_keras.explain.report import BASE_COLORS, plot_kmers, plot_tracks  # noqa: E402
from attngen_keras.models import build_model  # noqa: E402
from attngen_keras.plotting import plot_training_curves  # noqa: E402
from attngen_keras.training import _train_loss_label  # noqa: E402


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions make, kept open for inspection (savefig still writes)."""
    made, close = [], plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: made.append(fig))
    yield made
    for fig in made:
        close(fig)


def test_training_curves_have_whole_epoch_ticks_and_name_the_training_loss(tmp_path, figures):
    history = pd.DataFrame({"epoch": [0, 1, 2], "loss": [0.6, 0.5, 0.44], "val_loss": [0.2, 0.1, 0.07],
                            "accuracy": [0.8, 0.9, 0.95], "val_accuracy": [0.9, 0.95, 0.97],
                            "mask_fraction": [0.0, 0.1, 0.15]})  # fmt: skip
    label = "train loss (cross-entropy + faithfulness term)"
    plot_training_curves(history, tmp_path / "c.png", train_loss_label=label)
    assert (tmp_path / "c.png").stat().st_size > 0
    loss_axis = figures[0].axes[0]
    ticks = [t for t in loss_axis.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert label in [line.get_label() for line in loss_axis.get_lines()]


def test_one_epoch_without_validation_has_a_whole_tick_and_no_empty_legend_entries(
    tmp_path, figures
):
    nan = float("nan")
    history = pd.DataFrame({"epoch": [0], "loss": [0.6], "val_loss": [nan], "accuracy": [0.8],
                            "val_accuracy": [nan]})  # fmt: skip
    plot_training_curves(history, tmp_path / "c.png")
    for axis in figures[0].axes:
        xmin, xmax = axis.get_xlim()
        ticks = [t for t in axis.get_xticks() if xmin <= t <= xmax]
        assert ticks == [1.0]
        assert [line.get_label() for line in axis.get_lines()] in (
            ["train loss"],
            ["train accuracy"],
        )


def test_one_epoch_s_mask_fraction_is_drawn_as_a_point(tmp_path, figures):
    """A one-point dashed line draws nothing: the mask fraction of a one-epoch run (a short
    `--retrain-best`) gets a marker, as its accuracy does."""
    history = pd.DataFrame({"epoch": [0], "loss": [0.6], "accuracy": [0.8], "mask_fraction": [0.2]})
    plot_training_curves(history, tmp_path / "c.png")
    twin = [axis for axis in figures[0].axes if axis.get_ylabel() == "mask fraction"]
    [line] = [line for line in twin[0].get_lines() if line.get_label() == "mask fraction"]
    assert line.get_marker() == "o" and line.get_ydata().tolist() == [0.2]


def test_the_training_loss_label_names_the_terms_the_validation_loss_lacks():
    assert (
        _train_loss_label(build_model("attngen", 50, 2))
        == "train loss (cross-entropy + faithfulness term)"
    )
    assert _train_loss_label(build_model("attngen", 50, 2, preset="paper")) == "train loss"
    assert _train_loss_label(build_model("cnn", 50, 2)) == "train loss"


def test_saliency_tracks_have_a_base_legend_and_kmer_bars_say_their_order(tmp_path, figures):
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(3)]
    result = {"sequences": sequences, "scores": rng.random((3, 30)), "probs": rng.random((3, 1)),
              "class_names": ["a", "b"], "labels": [0, 1, 0], "ids": ["s1", "s2", "s3"]}  # fmt: skip
    plot_tracks(result, tmp_path / "t.png", n_examples=2)
    legend = figures[0].legends[0]
    assert [t.get_text() for t in legend.get_texts()] == list("ACGT")
    assert [matplotlib.colors.to_hex(h.get_facecolor()) for h in legend.legend_handles] == [
        BASE_COLORS[b] for b in "ACGT"
    ]
    kmers = [("AAAAAA", 3.0, 20, 40), ("CCCCCC", 9.0, 5, 6)]  # ranked first despite less enrichment
    plot_kmers(kmers, tmp_path / "k.png", 6)
    ax = figures[1].axes[0]
    assert "ranked by count in top windows" in ax.get_title(loc="left")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["CCCCCC", "AAAAAA"]  # best at the top
    assert [t.get_text() for t in ax.texts] == ["5 in top windows", "20 in top windows"]


def test_an_empty_kmer_ranking_says_so_in_the_plot(tmp_path, figures):
    plot_kmers([], tmp_path / "k.png", 6)
    ax = figures[0].axes[0]
    assert (tmp_path / "k.png").stat().st_size > 0 and not ax.patches  # no bars
    assert [t.get_text().splitlines()[0] for t in ax.texts] == [
        "no 6-mer is enriched in the top-importance windows"
    ]


def test_track_examples_take_each_class_in_turn_correct_ones_first():
    from attngen_keras.explain.report import track_examples

    probs = np.array([[0.7, 0.2, 0.1], [0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1],
                      [0.2, 0.2, 0.6]])  # fmt: skip
    labels = np.array([0, 0, 1, 1, 2])  # sequence 3 (class 1) is predicted as class 0
    assert track_examples(probs, labels, 3) == [1, 2, 4]
    assert track_examples(probs, labels, 5) == [1, 2, 4, 0, 3]
    assert track_examples(probs, labels, 10) == [1, 2, 4, 0, 3]  # no more than there are
    # sigmoid outputs (one column): class 1's probability is p, class 0's 1 - p
    assert track_examples(np.array([[0.2], [0.9], [0.7]]), np.array([0, 1, 1]), 3) == [0, 1, 2]


@pytest.mark.parametrize(
    "labels, ylabel",
    [("given", "accuracy"), ("predicted", "share of predictions unchanged"), (None, "accuracy")],
)
def test_perturbation_curves_say_what_their_y_axis_measures(tmp_path, figures, labels, ylabel):
    from attngen_keras.explain.perturbation import plot_perturbation

    curve = [1.0, 0.8, 0.6]
    result = {"fractions": [0.0, 0.1, 0.2], "chance": 0.5, "method": "attention", "n": 10,
              "replacement": "N", "accuracy": {r: curve for r in ("top", "random", "bottom")},
              "deletion_auc": {r: 0.5 for r in ("top", "random", "bottom")},
              "sufficiency": {r: curve for r in ("top", "random")}}  # fmt: skip
    if labels is not None:  # results written before the key existed have none
        result["labels"] = labels
    plot_perturbation(result, tmp_path / "p.png")
    assert [ax.get_ylabel() for ax in figures[0].axes] == [ylabel, ylabel]


def test_saliency_tracks_of_all_n_sequences_plot_without_warnings(tmp_path):
    """All-N sequences have no base to draw: an empty track, not matplotlib's singular-limits
    warning (which the CLI would print)."""
    import warnings

    import numpy as np

    from attngen_keras.explain.report import plot_tracks

    result = {
        "class_names": ["a", "b"], "probs": np.array([[0.4], [0.7]]), "labels": np.array([0, 1]),
        "sequences": ["NNNNNNNN", "NNNNNNNN"], "scores": np.zeros((2, 8)), "ids": ["s1", "s2"],
    }  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_tracks(result, tmp_path / "tracks.png")
    assert (tmp_path / "tracks.png").stat().st_size > 1000
