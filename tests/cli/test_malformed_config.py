"""Malformed configs through the CLI (issue 18): a wrong type, an unknown key or bad YAML is
refused with exit code 2 and one line naming the file and the key, before anything is written
to --out (`train`, `tune --config`, `instructions build --config`)."""

from __future__ import annotations

import pytest

from instructrec.testing.malformed import Case, check_refused

TRAIN = ["train", "--config", "{d}/c.yaml", "--out", "{d}/out"]
TUNE = ["tune", "--data", "{d}/t.tsv", "--config", "{d}/c.yaml", "--out", "{d}/out"]
BUILD = ["instructions", "build", "--config", "{d}/c.yaml", "--out", "{d}/out"]
PAIRS = "Is 2 even?\tYes\nIs 3 even?\tNo\n"


def train(id: str, yaml: str | bytes, *where: str) -> Case:
    return Case(id, {"c.yaml": yaml}, TRAIN, ("c.yaml", *where))


def tune(id: str, yaml: str, *where: str) -> Case:
    return Case(id, {"c.yaml": yaml, "t.tsv": PAIRS}, TUNE, ("c.yaml", *where))


def build(id: str, yaml: str, *where: str) -> Case:
    return Case(id, {"c.yaml": yaml}, BUILD, ("c.yaml", *where))


CASES = [
    train("lr-fast", "training:\n  lr: fast\n", "'training.lr'", "number"),
    train("lr-nan", "training:\n  lr: .nan\n", "'training.lr'"),
    train("lr-inf", "training:\n  lr: .inf\n", "'training.lr'"),
    train("epochs-two", "training:\n  epochs: two\n", "'training.epochs'", "integer"),
    train("epochs-float", "training:\n  epochs: 1.5\n", "'training.epochs'"),
    train("epochs-bool", "training:\n  epochs: true\n", "'training.epochs'"),
    train("epochs-zero", "training:\n  epochs: 0\n", "'training.epochs'", ">= 1"),
    train("batch-size-list", "training:\n  batch_size: [1, 2]\n", "'training.batch_size'"),
    train("warmup-out-of-range", "training:\n  warmup_ratio: 2\n", "'training.warmup_ratio'"),
    train("progress-string", "training:\n  progress: maybe\n", "'training.progress'"),
    train("device-gpu", "training:\n  device: gpu\n", "'training.device'"),
    train("metric-number", "training:\n  metric: 5\n", "'training.metric'"),
    train("unknown-top-key", "trainig:\n  lr: 0.1\n", "'trainig'"),
    train("unknown-nested-key", "training:\n  lrr: 0.1\n", "'training.lrr'"),
    train("training-list", "training: [1, 2]\n", "'training'"),
    train("data-seed-string", "data:\n  seed: '0'\n", "'data.seed'"),
    train("data-source-list", "data:\n  source: [a, b]\n", "'data.source'"),
    train("rerank-yes-string", "rerank: 'yes'\n", "'rerank'"),
    train("priors-number", "priors: 5\n", "'priors'"),
    train("retriever-number", "retriever: 5\n", "'retriever'"),
    train("retriever-unknown", "retriever: {name: nope}\n", "'retriever.name'"),
    train(
        "retriever-options-list", "retriever: {name: pop, options: [1]}\n", "'retriever.options'"
    ),
    train("prior-unknown-key", "priors: [pop, {name: pop, opts: {}}]\n", "'priors[1].opts'"),
    train(
        "prior-option-type",
        "priors: [{name: pop, options: {seed: x}}]\n",
        "'priors[0].options.seed'",
    ),
    train(
        "retriever-option-unknown",
        "retriever: {name: sasrec, options: {hiden: 3}}\n",
        "'retriever.options.hiden'",
    ),
    train(
        "retriever-option-type",
        "retriever: {name: sasrec, options: {lr: fast}}\n",
        "'retriever.options.lr'",
    ),
    train("lora-r-float", "backbone:\n  lora_r: 1.5\n", "'backbone.lora_r'"),
    train("lora-targets-string", "backbone:\n  lora_targets: query\n", "'backbone.lora_targets'"),
    train("lora-layers-strings", "backbone:\n  lora_layers: [a, b]\n", "'backbone.lora_layers'"),
    train("reranker-slots-number", "reranker:\n  slots: 4\n", "'reranker.slots'"),
    train("reranker-holdout-text", "reranker:\n  holdout: many\n", "'reranker.holdout'"),
    train("yaml-tab", "training:\n\tlr: 1\n", "line 2"),
    train("yaml-unclosed", "training: {lr: 1\n", "YAML"),
    train("yaml-top-level-list", "- a\n- b\n", "mapping"),
    train("yaml-latin1", "data:\n  source: café\n".encode("latin-1"), "line 2", "UTF-8"),
    Case(
        "data-source-missing",
        {"c.yaml": "data:\n  source: nowhere.csv\n"},
        TRAIN,
        ("nowhere.csv", "'data.source'", "no such file"),
        extra={"file": "nowhere.csv"},
    ),
    Case(
        "data-source-bad-csv",
        {"c.yaml": "data:\n  source: {d}/x.csv\n", "x.csv": "user_id,item_id,timestamp\n1,2,inf\n"},
        TRAIN,
        ("x.csv", "line 2", "'timestamp'"),
    ),
    Case("config-missing", {}, TRAIN, ("c.yaml", "not found")),
    tune("tune-lr-fast", "train:\n  lr: fast\n", "'train.lr'"),
    tune("tune-lora-r-text", "lora:\n  r: eight\n", "'lora.r'"),
    tune("tune-max-labels-list", "max_labels: [1]\n", "'max_labels'"),
    tune("tune-unknown-key", "epochs: 3\n", "'epochs'"),
    tune("tune-train-list", "train: [1]\n", "'train'"),
    tune("tune-epochs-zero", "train:\n  epochs: 0\n", "'train.epochs'"),
    build("build-seed-text", "seed: x\n", "'seed'"),
    build("build-unknown-key", "stages: train\n", "'stages'"),
    build("build-slots-string", "slots: P1I0T3\n", "'slots'"),
    build("build-per-user-float", "per_user: 1.5\n", "'per_user'"),
    build("build-teacher-number", "teacher: 3\n", "'teacher'"),
]


@pytest.mark.parametrize("case", CASES, ids=[k.id for k in CASES])
def test_malformed_config_is_refused(case, tmp_path):
    check_refused(case, tmp_path)


def test_yaml_11_float_strings_are_numbers(tmp_path):
    """YAML 1.1 reads ``1e-3`` as a string; a float field takes it as the number."""
    from instructrec.config import RunConfig

    p = tmp_path / "c.yaml"
    p.write_text("training:\n  lr: 1e-3\n  epochs: 3\n")
    cfg = RunConfig.from_yaml(p)
    assert cfg.training.lr == pytest.approx(0.001) and cfg.training.epochs == 3


def test_enough_cases():
    assert len({k.id for k in CASES}) == len(CASES) >= 40
