import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from conftest import make_record  # noqa: E402
from helpers.analysis.records import frame  # noqa: E402
from helpers.present import diagnostics, figures  # noqa: E402

CLASSES = ["T-shirt/top", "Trouser", "Pullover"]


def record(label, val=0.85, epochs=5, **kw):
    """A run record with a learning history of ``epochs`` epochs and a 3-class confusion matrix."""
    return make_record(label, val, history_epochs=epochs, classes=CLASSES, study="s", **kw)


RECORDS = [record("1 layer", 0.84, axis={"layers": 1}, baseline=True, params=100_000, seconds=3.0),
           record("2 layers", 0.87, axis={"layers": 2}, params=120_000, seconds=4.0),
           record("3 layers", 0.86, axis={"layers": 3}, params=140_000, seconds=5.5),
           record("broken", status="failed", axis={"layers": 4})]


def data_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_theme_is_colorblind_whitegrid():
    import seaborn as sns
    figures.theme()
    assert matplotlib.rcParams["axes.grid"] is True
    first = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][0]
    assert matplotlib.colors.to_hex(first) == matplotlib.colors.to_hex(sns.color_palette("colorblind")[0])


def test_learning_curves_panels_lines_and_styles():
    fig = figures.learning_curves(RECORDS)
    assert isinstance(fig, Figure)
    axes = data_axes(fig)
    assert len(axes) == 2
    ok = 3  # the failed record is skipped
    for ax in axes:
        assert len(ax.lines) == 2 * ok
        assert sorted(line.get_linestyle() for line in ax.lines) == ["-"] * ok + ["--"] * ok
        assert ax.get_title()
        # same configuration -> same colour for its train and validation curve
        assert len({matplotlib.colors.to_hex(line.get_color()) for line in ax.lines}) == ok
        assert ax.lines[0].get_xdata()[0] == 1  # epochs are 1-based
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"1 layer", "2 layers", "3 layers", "training", "validation"} <= set(legend_texts)
    assert "broken" not in legend_texts


@pytest.mark.parametrize("metrics", [("accuracy",), ("accuracy", "loss"), ("loss", "accuracy")])
def test_learning_curves_one_panel_per_metric(metrics):
    fig = figures.learning_curves(RECORDS[:2], metrics=metrics)
    assert len(data_axes(fig)) == len(metrics)


@pytest.mark.parametrize("fn", [
    lambda: figures.learning_curves(RECORDS),
    lambda: figures.versus(frame(RECORDS), "params"),
    lambda: figures.bars(frame(RECORDS)),
    lambda: figures.accuracy_splits(frame(RECORDS)),
    lambda: diagnostics.confusion_matrices(RECORDS[:2]),
])
def test_figure_size_fits_screen_and_a4(fn):
    fig = fn()
    width, height = fig.get_size_inches()
    assert isinstance(fig, Figure) and width <= 7.5 and 3 <= height <= 4.5


def test_versus_sorted_annotated_and_skips_failed():
    df = frame(RECORDS).sample(frac=1, random_state=0)  # shuffled on purpose
    fig = figures.versus(df, "params", logx=True, title="Accuracy vs size", xlabel="parameters")
    ax = data_axes(fig)[0]
    xs = list(ax.lines[0].get_xdata())
    assert xs == sorted(xs) and len(xs) == 3
    assert sorted(t.get_text() for t in ax.texts) == ["1 layer", "2 layers", "3 layers"]
    assert ax.get_xscale() == "log" and ax.get_title() == "Accuracy vs size" and ax.get_xlabel() == "parameters"


def test_bars_values_printed_and_axis_zoomed():
    fig = figures.bars(frame(RECORDS), y="val_accuracy")
    ax = data_axes(fig)[0]
    assert len(ax.patches) == 3
    assert {t.get_text().strip() for t in ax.texts} == {"0.8400", "0.8700", "0.8600"}
    lo, hi = ax.get_xlim()
    assert 0.5 < lo < 0.84 and hi > 0.87
    assert ax.get_xticks()[0] == pytest.approx(lo)  # the non-zero start is labelled
    assert "starts at" in ax.get_xlabel()


def test_bars_start_at_zero_when_values_are_spread():
    df = frame([record("a", 0.2), record("b", 0.9)])
    ax = data_axes(figures.bars(df, y="val_accuracy"))[0]
    assert ax.get_xlim()[0] == 0
    assert "starts at" not in ax.get_xlabel()


def test_accuracy_splits_three_bars_per_config():
    fig = figures.accuracy_splits(frame(RECORDS))
    ax = data_axes(fig)[0]
    assert len(ax.containers) == 3 and all(len(c) == 3 for c in ax.containers)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["train", "validation", "test"]
    assert sum("gap" in t.get_text() for t in ax.texts) == 3


@pytest.mark.parametrize("n", [1, 2, 3])
def test_confusion_matrices_one_heatmap_per_record(n):
    recs = RECORDS[:n] + [RECORDS[-1]]  # plus the failed one, which must be skipped
    fig = diagnostics.confusion_matrices(recs)
    axes = data_axes(fig)
    assert len(axes) == n
    for ax, rec in zip(axes, recs):
        assert any(isinstance(c, QuadMesh) for c in ax.collections)
        assert rec["label"] in ax.get_title() and f"{rec['metrics']['test_accuracy']:.4f}" in ax.get_title()
        assert [t.get_text() for t in ax.get_xticklabels()] == rec["class_names"]
        assert len(ax.texts) == 9  # every cell annotated


def test_confusion_is_row_normalised():
    rec = record("x")
    rec["confusion"] = [[50, 50, 0], [0, 10, 0], [0, 0, 300]]
    ax = data_axes(diagnostics.confusion_matrices([rec]))[0]
    assert [t.get_text() for t in ax.texts][:3] == ["50", "50", "0"]
    assert ax.texts[-1].get_text() == "100"


@pytest.mark.parametrize("fn", [figures.learning_curves, diagnostics.confusion_matrices])
def test_all_failed_records_give_placeholder(fn):
    fig = fn([record("dead", status="failed")])
    assert isinstance(fig, Figure) and "No successful runs" in fig.axes[0].texts[0].get_text()


def test_frame_functions_skip_failed_rows():
    df = frame(RECORDS)
    assert len(data_axes(figures.bars(df))[0].patches) == 3
    assert len(data_axes(figures.versus(df, "seconds"))[0].lines[0].get_xdata()) == 3


def test_a_diverged_run_is_drawn_and_its_exploding_loss_leaves_the_panel():
    diverged = record("lr 10", 0.1, epochs=3, status="diverged", reason="loss became NaN at epoch 3")
    diverged["history"]["loss"] = [2.3, 1e9, None]  # NaN is stored as null
    diverged["history"]["val_loss"] = [2.3, 5e8, None]
    fig = figures.learning_curves(RECORDS + [diverged])
    acc, loss = data_axes(fig)
    assert len(acc.lines) == len(loss.lines) == 2 * 4
    assert "lr 10 (diverged)" in [t.get_text() for t in fig.legends[0].get_texts()]
    assert acc.get_ylim()[0] <= 0.1  # at chance: still in view
    assert loss.get_ylim()[1] < 1  # the ok runs' losses set the scale, not 1e9
