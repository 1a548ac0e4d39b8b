"""The Methodology section and the appendix's parameters, generated from the plan and the runs."""
from __future__ import annotations

import html
import os
from collections import Counter

import yaml

from helpers.analysis.noise import ALPHA, MIN_POINTS
from helpers.analysis.records import by_study
from helpers.config.plan import Plan
from helpers.config.record import RunRecord, is_refit
from helpers.present import format as fmt, repeats as repeat_words
from helpers.present.findings import floor_words
from helpers.present.trends import MORE


def _stopping(records: list[RunRecord]) -> dict[str, bool | None]:
    """study -> True when every run stopped early (restoring its best weights), False when none
    did, None when some did."""
    out = {}
    for study, rs in by_study(records).items():
        used = {bool(((r.get("config") or {}).get("training") or {}).get("early_stopping")) for r in rs}
        out[study] = used.pop() if len(used) == 1 else None
    return out


def measured_model(records: list[RunRecord], base_stops: bool) -> str:
    """Which weights the metrics are measured on, as it happened: with early stopping Keras restores
    the epoch with the best monitored value; without it the model is the one after the last epoch."""
    stops = _stopping(records)
    if not stops:
        return ("the restored model: the epoch with the best monitored value" if base_stops
                else "the model after its last epoch")
    if all(v is True for v in stops.values()):
        return "the restored model: every run uses early stopping, which keeps the epoch with the best monitored value"
    if all(v is False for v in stops.values()):
        return "the model after its last epoch: no run uses early stopping, so nothing is restored"
    restored = [s for s, v in stops.items() if v is not False]
    names = ", ".join(f"*{s}*" for s in restored)
    return (f"the model after its last epoch, except in the {names} stud{'y' if len(restored) == 1 else 'ies'}, "
            "where runs with early stopping are measured on the restored epoch with the best monitored value")


def execution(backend: str, records: list[RunRecord]) -> str:
    """How the training steps ran, as the records say (a record cached before issue 13 has no
    ``execution``): the backend, XLA or not, steps per call, and every run that asked for XLA and
    trained without it."""
    ran = [r["execution"] for r in records if r.get("execution")]
    words = {"tensorflow": "TensorFlow", "jax": "JAX"}.get(backend, backend)
    if not ran:
        return f"Keras ran on {words}."
    kinds = Counter((e["jit_compile"], e["steps_per_execution"]) for e in ran)

    def one(jit: bool, steps: int) -> str:
        what = "XLA-compiled steps" if jit else ("steps as TensorFlow graphs, without XLA" if backend == "tensorflow"
                                                  else "steps without XLA")
        return f"{what}, {steps} per call"
    how = "; ".join(one(jit, steps) + (f" ({fmt.count(k)} run{'s' * (k != 1)})" if len(kinds) > 1 else "")
                    for (jit, steps), k in sorted(kinds.items()))
    fell = [e["xla_fallback"] for e in ran if e.get("xla_fallback")]
    out = f"Keras ran on {words}: {how} (training.jit_compile, training.steps_per_execution)."
    if fell:
        out += (f" {fmt.count(len(fell))} run{'s' * (len(fell) != 1)} asked for XLA and trained without it "
                f"({html.escape(fell[0])}).")
    return out


def methodology(plan: Plan, records: list[RunRecord], n: int = 1) -> str:
    rep = plan.report
    # A cv refit trains on train+validation: its split is not the report's.
    infos = sorted((r for r in records if r.get("data_info")), key=is_refit)
    info = infos[0]["data_info"] if infos else None
    base_m, base_t = rep.base.model.model_dump(), rep.base.training.model_dump()
    profile = rep.profiles[rep.profile]
    # the number of epochs that ran: the profile caps the base configuration's
    epochs = min(base_t["epochs"], profile.epochs) if profile.epochs else base_t["epochs"]
    lines = [f"### {n}.1 Data", ""]
    if info:
        lines.append(f"Dataset `{info['dataset']}` ({info['classes']} classes, inputs of shape "
                     f"{tuple(info.get('input_shape') or info.get('shape') or ())}), read from `{info['source']}`. Preprocessing: {info['preprocessing']}. "
                     f"Split: **{info['train']:,}** training, **{info['val']:,}** validation and "
                     f"**{info['test']:,}** test samples.")
        if info.get("storage"):
            lines[-1] += f" Features are stored as {info['storage']}."
        if info.get("example"):
            lines += ["", f"A training example, decoded: *{html.escape(str(info['example']))}*"]
    else:
        lines.append(f"Dataset `{rep.dataset}` (no run finished, so split sizes are unknown).")
    how = ("the first samples of the training subsample, in their original order"
           if rep.data.validation_method == "head" else f"a stratified sample of the training subsample, seed {rep.seed}")
    lines += ["",
              f"The validation set ({rep.data.validation_split:.0%}: {how}) is carved out of the training "
              "data. The test set is used once per run, after "
              "training, for the final metrics; it never influences early stopping or the choice of a best "
              "configuration, which is always made on validation accuracy.",
              "", f"Profile **{rep.profile}**: "
              + ", ".join([f"{profile.train_samples:,} training samples" if profile.train_samples else "all training samples",
                           f"{profile.test_samples:,} test samples" if profile.test_samples else "all test samples"])
              + " (subsamples are stratified and seeded)" * bool(profile.train_samples or profile.test_samples)
              + (f", at most {profile.epochs} epoch{'s' * (profile.epochs != 1)} per run." if profile.epochs
                 else ", the configured number of epochs."),
              "", f"### {n}.2 Model and training", "",
              f"Every run starts from one base configuration and a study changes only what it studies: "
              f"{'an' if base_m.get('kind', 'mlp') == 'mlp' else 'a'} {base_m.get('kind', 'mlp').upper()} with hidden layers {base_m.get('hidden')} "
              f"({base_m.get('activation')}, initializer {base_m.get('initializer')}), "
              + ("one sigmoid output unit (two classes); " if info and info.get("classes") == 2 else "softmax output; ")
              + f"optimizer {base_t.get('optimizer')} (learning rate {base_t.get('learning_rate')}), "
              f"batch size {base_t.get('batch_size')}, {'up to ' * bool(base_t.get('early_stopping'))}{epochs} "
              f"epoch{'s' * (epochs != 1)}, loss "
              f"{base_t.get('loss')}; "
              + (f"early stopping on {base_t['early_stopping'].get('monitor', 'val_loss')} with patience "
                 f"{base_t['early_stopping'].get('patience', 3)}, restoring the best weights."
                 if base_t.get("early_stopping") else "no early stopping."),
              execution(rep.backend, records),
              "Each study's own settings are listed at the start of its section, and every study's "
              "parameters in [Appendix C](#appendix-parameters).",
              "", f"### {n}.3 Measurements", "",
              f"Per run: train, validation and test accuracy and loss (of {measured_model(records, bool(base_t.get('early_stopping')))}), macro F1 and "
              + ("ROC AUC, average precision and Brier score" if info and info.get("classes") == 2 else "one-vs-rest AUC")
              + " on the test set, the test confusion matrix, the overfitting gap (train − "
              "validation accuracy), the parameter count, epochs run and best epoch (by early stopping's monitored "
              "value, else the lowest validation loss), and training wall time "
              f"(fit only, on {os.cpu_count()} CPU cores). " + repeat_words.methodology(records, rep.seed),
              "", f"Differences below the noise floor of {floor_words(records)} are not claimed as effects: no trend, "
              "peak, plateau, ranking, largest or smallest effect, overfitting comparison or correlation rests on "
              "less (each study's findings derive the floor the same way from its own runs). Rank correlations "
              f"must also reach p < {ALPHA:g} on at least {MIN_POINTS} runs. Where the data cannot decide, the text says so ({MORE})."]
    return "\n".join(lines)


def parameters_yaml(plan: Plan) -> list[tuple[str, str]]:
    """(heading, YAML) pairs: the shared settings, then each study's merged settings."""
    rep = plan.report
    dump = lambda d: yaml.safe_dump(d, sort_keys=False, default_flow_style=None, allow_unicode=True, width=56)  # noqa: E731
    shared = {"dataset": rep.dataset, "profile": rep.profile, "seed": rep.seed,
              rep.profile: rep.profiles[rep.profile].model_dump(),
              "data": rep.data.model_dump(), "base": rep.base.model_dump(mode="json")}
    out = [("Shared settings", dump(shared))]
    for name, sp in plan.studies.items():
        entry = rep.studies.get(name) or {}
        entry = {k: v for k, v in entry.items() if k != "introduction"}
        out.append((f"{sp.title} ({name})", dump({name: entry or {"kind": sp.kind}})))
    return out
