"""PNG plots of training runs."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig, ax, path, legend=True, dpi=110):
    """Grid, legend and tight layout on `ax`; writes `fig` to `path` and closes it."""
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_training_curves(history, path, title="", train_loss_label="train loss"):
    """Loss, accuracy and (if present) the mask fraction per epoch.

    Args:
        history: a pandas DataFrame like `history.csv` (`epoch`, `loss`,
            `accuracy`, `val_loss`, `val_accuracy`, `mask_fraction`).
        path: the PNG to write.
        title: figure title.
        train_loss_label: the legend of the training loss (say what it adds to
            the validation loss's cross-entropy, e.g. a faithfulness term).
    """
    from matplotlib.ticker import MaxNLocator

    epochs = history["epoch"] + 1
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        if metric in history:
            label = train_loss_label if metric == "loss" else f"train {metric}"
            ax.plot(epochs, history[metric], "o-", label=label)
        # (a run without validation data has the columns, empty)
        if f"val_{metric}" in history and history[f"val_{metric}"].notna().any():
            ax.plot(epochs, history[f"val_{metric}"], "s-", label=f"val {metric}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        # epochs are whole, also when there is one
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    entries = [ax.get_legend_handles_labels() for ax in axes]
    if "mask_fraction" in history and history["mask_fraction"].max() > 0:
        twin = axes[1].twinx()
        # a marker too when there is one epoch: a one-point line is not drawn
        twin.step(epochs, history["mask_fraction"], where="mid", color="gray", linestyle="--",
                  marker="o" if len(history) == 1 else None, label="mask fraction")  # fmt: skip
        twin.set_ylabel("mask fraction")
        twin.set_ylim(0, max(0.5, float(history["mask_fraction"].max()) * 1.2))
        handles, labels = twin.get_legend_handles_labels()  # one legend with the accuracy's
        entries[1] = (entries[1][0] + handles, entries[1][1] + labels)
    # legends below the axes, where no curve can lie under them
    for ax, (handles, labels) in zip(axes, entries):
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3,
                  fontsize=8, frameon=False)  # fmt: skip
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
