"""Writes notebooks/<kind>.ipynb for every study kind from one skeleton, so that they stay alike.

Run after changing the skeleton: .venv/bin/python tools/make_notebooks.py
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_notebook, new_markdown_cell, new_code_cell

STUDIES = {
    "depth": ("Network depth", "the number of hidden layers (`layers`) at a fixed width",
              [("Accuracy against model size", 'section.versus(records, x="params", xlabel="trainable parameters")')]),
    "width": ("Network width", "the number of units per hidden layer (`units`) at a fixed depth",
              [("Accuracy against model size", 'section.versus(records, x="params", logx=True, xlabel="trainable parameters (log scale)")')]),
    "loss": ("Loss function", "the loss minimised on the softmax output (`loss`)",
             [("Train, validation and test accuracy", "section.splits(records)")]),
    "activation": ("Activation function", "the hidden-layer activation (`activation`)",
                   [("Train, validation and test accuracy", "section.splits(records)")]),
    "regularization": ("Regularization", "the regularizer: dropout, GaussianDropout, L1/L2 penalties, batch normalization (`variants`)",
                       [("Overfitting: train, validation and test accuracy", "section.splits(records)")]),
    "optimizer": ("Optimizer", "the optimizer and its learning rate (`variants`)",
                  [("Accuracy against training time", 'section.versus(records, x="seconds", xlabel="training time (s)")')]),
    "batch_size": ("Batch size", "the mini-batch size (`batch_sizes`); training time is part of the result",
                   [("Accuracy against training time", 'section.versus(records, x="seconds", xlabel="training time (s)")')]),
    "cnn_vs_baseline": ("CNN vs dense baseline", "the architecture: a dense baseline against a small convolutional network (`variants`)",
                        [("Confusion matrices on the test set", "section.confusion(records)"),
                         ("Accuracy against model size", 'section.versus(records, x="params", logx=True, xlabel="trainable parameters (log scale)")')]),
    "compare": ("Named configurations side by side", "whole configurations: each named variant differs from the base in the keys it lists (`variants`)",
                [("Train, validation and test accuracy", "section.splits(records)")]),
    "grid": ("Grid over several hyperparameters", "several keys at once, as the product of their values (`axes`)",
             [("The grid", "section.grid(records)"), ("Train, validation and test accuracy", "section.splits(records)")]),
    "robustness": ("Robustness over seeds", "the random seed: the `top` configurations across the report's other "
                   "studies (by validation accuracy), each trained again with several seeds (`seeds` or `repeats`)",
                   []),
    "cv": ("Cross-validation", "whole configurations (`variants`), each scored by k-fold cross-validation on "
           "the training and validation data (`folds`)", []),
    "initializer": ("Weight initializer", "the initial weight distribution (`initializers`; `stddev` for truncated_normal)",
                    [("Train, validation and test accuracy", "section.splits(records)")]),
    "learning_rate": ("Learning rate", "the optimizer's learning rate (`learning_rates`); a run that diverges is stopped and marked",
                      [("Accuracy against learning rate", 'section.versus(records, x="learning_rate", logx=True, xlabel="learning rate (log scale)")')]),
    "search": ("Hyperparameter search", "the hyperparameters declared in `space`, searched with Keras Tuner "
               "(`algorithm` and its budget) on validation data only", []),
}
# Sections of their own after training, instead of the common results/curves/findings:
# (heading or None, call) pairs.
BODIES = {
    # no ROC of a single seed here: the best configuration's own study shows it
    "robustness": [(None, "section.design(records)"), ("Results over seeds", "section.table(records)"),
                   (None, "section.failures(records)"), ("Learning curves", "section.curves(records)"),
                   ("Spread over seeds", "section.spread(records)"),
                   ("Findings", "section.comparisons(records)"), (None, "section.findings(records)")],
    "cv": [(None, "section.cv_design(records)"), ("Fold scores", "section.cv_table(records)"),
           (None, "section.failures(records)"), (None, "section.cv_figure(records)"),
           ("Paired comparison across folds", "section.cv_tests(records)"),
           ("Selected configuration, retrained and tested once", "section.cv_selected(records)"),
           ("Findings", "section.cv_findings(records)")],
    "search": [(None, "section.search_space(records)"), ("Top trials", "section.search_trials(records)"),
               ("Validation score against each hyperparameter", "section.search_scores(records)"),
               ("Best trial, retrained and tested once", "section.table(records)"),
               (None, "section.failures(records)"), ("Learning curves of the retrained best trial", "section.curves(records)"),
               ("Findings", "section.search_findings(records)")],
}

for kind, (title, varied, figures) in STUDIES.items():
    cells = [
        new_markdown_cell(f"# {title}\n\n"
                          f"A **studybook** study notebook. It varies {varied} and holds everything else at the "
                          f"report's base configuration.\n\n"
                          "`build_report.py` executes it with papermill, injecting the runs below; opened by hand in "
                          "Jupyter it trains the smoke profile of `params/report.yaml`.",
                          metadata={"tags": ["header"]}),
        new_code_cell(
            f'study = "{kind}"  # the study\'s name: its report section has the id study-<name>\n'
            f'title = "{title}"\n'
            'question = ""\n'
            "runs = []  # run specs injected by build_report.py (docs/records.md); empty: from params/report.yaml\n"
            f'results_path = "{kind}.results.json"\n'
            "events_path = None  # progress events (JSON lines) read by build_report.py\n"
            "threads = None  # TensorFlow threads; None: every core\n"
            "cache_dir = None  # run cache (build_report.py: reports/.cache); None: train everything\n"
            "force = False  # True: train again even where the cache has the run",
            metadata={"tags": ["parameters"]}),
        new_code_cell("from helpers import section"),
        # The report leaves this cell's code out (paths and threads of one build); Appendix C lists
        # the parameters it trained.
        new_code_cell("records = section.train(study, runs, results_path=results_path, events_path=events_path,\n"
                      "                        threads=threads, cache_dir=cache_dir, force=force)",
                      metadata={"tags": ["remove-input"]}),
        new_code_cell("section.design(records)"),
        new_markdown_cell("### Results"),
        new_code_cell("section.table(records)"),
        new_code_cell("section.failures(records)"),
        new_markdown_cell("### Learning curves"),
        new_code_cell("section.curves(records)"),
        new_code_cell("section.diagnostics(records)"),
    ]
    for heading, call in figures:
        cells += [new_markdown_cell(f"### {heading}"), new_code_cell(call)]
    # comparisons: the paired tests behind the findings (shown only when configurations have several seeds)
    cells += [new_markdown_cell("### Findings"), new_code_cell("section.comparisons(records)"),
              new_code_cell("section.findings(records)")]
    if kind in BODIES:
        trained = next(i for i, c in enumerate(cells) if "section.train(" in c.source) + 1
        cells = cells[:trained] + [c for heading, call in BODIES[kind]
                                   for c in ([new_markdown_cell(f"### {heading}")] if heading else [])
                                   + [new_code_cell(call)]]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    for i, c in enumerate(nb.cells):
        c.id = f"{kind.replace('_', '-')}-{i}"
    nbformat.write(nb, Path(__file__).resolve().parents[1] / "notebooks" / f"{kind}.ipynb")
print(f"wrote {len(STUDIES)} notebooks")
