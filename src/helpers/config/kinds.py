"""The registry of study kinds: each kind declared once, here.

An entry says everything that makes a kind: its parameter schema (a class of
helpers.config.studies), its defaults file (``params/studies/<kind>.yaml``, optional), its notebook
(title, what it varies, and the cells after training: the common results/curves/findings plus
``figures``, or a ``body`` of its own; calls on ``section`` and, with ``view``, on that module of
helpers.present.views), the words for its swept key in captions, and its phase (``after_others``:
it runs after the other studies, re-training their best configurations, and is no factor of its
own in cross-study summaries). Config, execution, the notebook generator (helpers.build.notebooks)
and the report read this registry; none of them compares kind names.

Adding a kind: a schema class (or an existing one), an entry below, optionally
``params/studies/<kind>.yaml``, then ``make notebooks`` writes ``notebooks/<kind>.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from helpers.config.studies import (
    ActivationStudy,
    BatchSizeStudy,
    CVStudy,
    DepthStudy,
    GridStudy,
    InitializerStudy,
    LearningRateStudy,
    LossStudy,
    RobustnessStudy,
    SearchStudy,
    Study,
    VariantStudy,
    WidthStudy,
)

Cell = tuple  # (markdown heading or None, one call)


@dataclass(frozen=True)
class Kind:
    schema: type[Study]
    title: str                                  # the notebook's heading
    varies: str                                 # "It varies <this> and holds everything else ..."
    figures: tuple[Cell, ...] = ()              # extra (heading, call) cells before the findings
    body: tuple[Cell, ...] | None = None        # the cells after training, instead of the common ones
    view: str | None = None                     # a module of helpers.present.views the cells call
    words: dict[str, str] = field(default_factory=dict)  # swept key -> words in captions
    after_others: bool = False                  # runs after the other studies, on their best runs


SPLITS = ("Train, validation and test accuracy", "section.splits(records)")
PARAMS_LOG = ("Accuracy against model size",
              'section.versus(records, x="params", logx=True, xlabel="trainable parameters (log scale)")')
TIME = ("Accuracy against training time", 'section.versus(records, x="seconds", xlabel="training time (s)")')
# The reference study's figures beside ours (params: `reference`), before the findings; shows nothing
# where no configuration carries a reference. Every kind has it (helpers.build.notebooks adds it
# to the common cells; the bodies below list it themselves).
REFERENCES = (None, "section.references(records)")

KINDS: dict[str, Kind] = {
    "depth": Kind(DepthStudy, "Network depth", "the number of hidden layers (`layers`) at a fixed width",
                  (("Accuracy against model size",
                    'section.versus(records, x="params", xlabel="trainable parameters")'),),
                  words={"layers": "number of hidden layers"}),
    "width": Kind(WidthStudy, "Network width", "the number of units per hidden layer (`units`) at a fixed depth",
                  (("Accuracy against model size", 'section.versus(records, x="params", logx=True, '
                    'xlabel="trainable parameters (log scale)")'),),
                  words={"units": "units per hidden layer"}),
    "loss": Kind(LossStudy, "Loss function", "the loss minimised on the softmax output (`loss`)", (SPLITS,),
                 words={"loss": "loss function"}),
    "activation": Kind(ActivationStudy, "Activation function", "the hidden-layer activation (`activation`)",
                       (SPLITS,), words={"activation": "activation function"}),
    "regularization": Kind(VariantStudy, "Regularization", "the regularizer: dropout, GaussianDropout, L1/L2 "
                           "penalties, batch normalization (`variants`)",
                           (("Overfitting: train, validation and test accuracy", "section.splits(records)"),)),
    "optimizer": Kind(VariantStudy, "Optimizer", "the optimizer and its learning rate (`variants`)", (TIME,)),
    "batch_size": Kind(BatchSizeStudy, "Batch size", "the mini-batch size (`batch_sizes`); training time is "
                       "part of the result", (TIME,), words={"batch_size": "batch size"}),
    "cnn_vs_baseline": Kind(VariantStudy, "CNN vs dense baseline", "the architecture: a dense baseline against "
                            "a small convolutional network (`variants`)",
                            (("Confusion matrices on the test set", "section.confusion(records)"), PARAMS_LOG)),
    "compare": Kind(VariantStudy, "Named configurations side by side", "whole configurations: each named variant "
                    "differs from the base in the keys it lists (`variants`)", (SPLITS,)),
    "grid": Kind(GridStudy, "Grid over several hyperparameters", "several keys at once, as the product of their "
                 "values (`axes`)", (("The grid", "section.grid(records)"), SPLITS)),
    "robustness": Kind(
        RobustnessStudy, "Robustness over seeds", "the random seed: the `top` configurations across the report's "
        "other studies (by validation accuracy), each trained again with several seeds (`seeds` or `repeats`)",
        # no ROC of a single seed here: the best configuration's own study shows it
        body=((None, "section.design(records)"), ("Results over seeds", "section.table(records)"),
              (None, "section.failures(records)"), ("Learning curves", "section.curves(records)"),
              ("Spread over seeds", "section.spread(records)"), REFERENCES,
              ("Findings", "section.comparisons(records)"), (None, "section.findings(records)")),
        after_others=True),
    "cv": Kind(
        CVStudy, "Cross-validation", "whole configurations (`variants`), each scored by k-fold cross-validation "
        "on the training and validation data (`folds`)", view="cv",
        body=((None, "cv.design(records)"), ("Fold scores", "cv.table(records)"),
              (None, "section.failures(records)"), (None, "cv.figure(records)"),
              ("Paired comparison across folds", "cv.tests(records)"),
              ("Selected configuration, retrained and tested once", "cv.selected(records)"), REFERENCES,
              ("Findings", "cv.findings(records)"))),
    "initializer": Kind(InitializerStudy, "Weight initializer", "the initial weight distribution (`initializers`; "
                        "`stddev` for truncated_normal)", (SPLITS,)),
    "learning_rate": Kind(LearningRateStudy, "Learning rate", "the optimizer's learning rate (`learning_rates`); "
                          "a run that diverges is stopped and marked",
                          (("Accuracy against learning rate", 'section.versus(records, x="learning_rate", '
                            'logx=True, xlabel="learning rate (log scale)")'),),
                          words={"learning_rate": "learning rate"}),
    "search": Kind(
        SearchStudy, "Hyperparameter search", "the hyperparameters declared in `space`, searched with Keras Tuner "
        "(`algorithm` and its budget) on validation data only", view="search",
        body=((None, "search.space(records)"), ("Top trials", "search.trials(records)"),
              ("Validation score against each hyperparameter", "search.scores(records)"),
              ("Best trial, retrained and tested once", "section.table(records)"),
              (None, "section.failures(records)"),
              ("Learning curves of the retrained best trial", "section.curves(records)"), REFERENCES,
              ("Findings", "search.findings(records)"))),
}

# Words for a swept key in captions ("by number of hidden layers"), from every kind's entry.
AXIS_WORDS: dict[str, str] = {k: v for kind in KINDS.values() for k, v in kind.words.items()}


def after_others(kind: str | None) -> bool:
    """True for a kind that re-trains the other studies' best configurations (robustness): it runs
    after them, and its runs are no configurations of their own in cross-study summaries."""
    return kind in KINDS and KINDS[kind].after_others
