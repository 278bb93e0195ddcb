"""The one config loader (`instructrec.data.settings`): every config class is read by it, bad
input is one error naming the file and the key, ``--set`` goes through the same checks, and
the dataclass defaults are the shipped configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.config import RunConfig, packaged_config
from instructrec.data.errors import DataError
from instructrec.data.settings import apply_overrides, load_config
from instructrec.instructions.config import InstructionConfig
from instructrec.instructions.teacher import TeacherConfig
from instructrec.training.config import TrainConfig, reranker_training
from instructrec.training.tune_config import TuneConfig

REPO = Path(__file__).resolve().parents[1]
CLASSES = [RunConfig, TrainConfig, TuneConfig, InstructionConfig, TeacherConfig]


def test_defaults_are_the_shipped_model():
    """RunConfig() == the packaged quickstart.yaml == the repository's configs/quickstart.yaml."""
    packaged = packaged_config()
    assert packaged.is_file() and packaged.parent.name == "configs"
    assert RunConfig.from_yaml(packaged) == RunConfig()
    assert (REPO / "configs" / "quickstart.yaml").read_text() == packaged.read_text()
    assert RunConfig().training == reranker_training()
    assert isinstance(RunConfig().training, TrainConfig)


@pytest.mark.parametrize("cls", CLASSES)
def test_unknown_key_is_refused_naming_file_and_key(tmp_path, cls):
    p = tmp_path / "c.yaml"
    p.write_text("no_such_knob: 1\n")
    with pytest.raises(DataError, match=r"c\.yaml.*no_such_knob") as e:
        load_config(cls, p)
    assert e.value.column == "no_such_knob" and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "text,key",
    [
        ("training:\n  lr: fast\n", "training.lr"),
        ("training:\n  max_grad_norm: [1]\n", "training.max_grad_norm"),
        ("reranker:\n  copies: two\n", "reranker.copies"),
        ("backbone:\n  lora_targets: query\n", "backbone.lora_targets"),
        ("training:\n  batch_size: 0\n", "training.batch_size"),
        ("priors:\n  - name: pop\n    options: {k: 3}\n", "priors[0].options.k"),
        ("training:\n  lr_typo: 1\n", "training.lr_typo"),
    ],
)
def test_wrong_type_or_key_in_a_run_file_names_file_and_key(tmp_path, text, key):
    p = tmp_path / "run.yaml"
    p.write_text(text)
    with pytest.raises(DataError, match=r"run\.yaml") as e:
        RunConfig.from_yaml(p)
    assert e.value.column == key
    res = CliRunner().invoke(main, ["train", "--config", str(p), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and key in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_a_section_given_in_part_keeps_the_shipped_values(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("training:\n  max_grad_norm: 0.5\n  log_every: 3\n  save_total_limit: 4\n")
    cfg = RunConfig.from_yaml(p)
    assert (cfg.training.max_grad_norm, cfg.training.log_every) == (0.5, 3)
    assert cfg.training.save_total_limit == 4
    assert cfg.training.lr == reranker_training().lr and cfg.training.metric == "hr@1"


def test_set_overrides_and_refuses_bad_keys():
    base = RunConfig()
    cfg = apply_overrides(
        base, ["training.lr=5e-4", "reranker.slots=[P1I0]", "priors.1.name=pop", "rerank=false"]
    )
    assert cfg.training.lr == 5e-4 and cfg.reranker.slots == ["P1I0"]
    assert cfg.priors[1].name == "pop" and cfg.rerank is False
    assert base == RunConfig()  # the config overridden is not written into
    tune = apply_overrides(TuneConfig(), ["train.epochs=3", "lora=null"])
    assert tune.train.epochs == 3 and tune.lora is None
    for bad, key in [
        ("training.lrr=1", "training.lrr"),
        ("training.lr=fast", "training.lr"),
        ("nosection.x=1", "nosection.x"),
        ("priors.7.name=pop", "priors.7.name"),
        ("retriever.options.nope=1", "retriever.options.nope"),
    ]:
        with pytest.raises(DataError, match=r"--set") as e:
            apply_overrides(base, [bad])
        assert key.split(".")[0] in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DataError, match="SECTION.KEY=VALUE"):
        apply_overrides(base, ["training.lr"])


def test_cli_set_errors_are_one_line_exit_2(tmp_path):
    res = CliRunner().invoke(
        main, ["train", "--out", str(tmp_path / "o"), "--set", "training.nope=1"]
    )
    assert res.exit_code == 2 and "training.nope" in res.output
    res = CliRunner().invoke(main, ["train", "--out", str(tmp_path / "o"), "--max-steps", "3"])
    assert res.exit_code == 2 and "--set training.max_steps=3" in res.output
    res = CliRunner().invoke(
        main, ["quickstart", "--out", str(tmp_path / "q"), "--set", "reranker.copies=two"]
    )
    assert res.exit_code == 2 and "reranker.copies" in res.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "q").exists()


def test_a_key_written_twice_is_refused_naming_its_lines(tmp_path):
    """PyYAML keeps the last of two equal keys silently; a run file must not."""
    run = tmp_path / "run.yaml"
    run.write_text("reranker:\n  intent_dropout: 0.5\n  seed: 0\n  intent_dropout: 0.0\n")
    with pytest.raises(DataError, match=r"key 'intent_dropout' repeated \(first on line 2\)") as e:
        RunConfig.from_yaml(run)
    assert str(run) in str(e.value) and "line 4" in str(e.value)
    res = CliRunner().invoke(main, ["train", "--config", str(run), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "repeated" in res.output and not (tmp_path / "o").exists()
    # the same key in two sections, and a merge key overridden, are not repeats
    run.write_text("reranker:\n  seed: 1\ntraining:\n  seed: 2\n")
    cfg = RunConfig.from_yaml(run)
    assert (cfg.reranker.seed, cfg.training.seed) == (1, 2)
    merged = tmp_path / "merge.yaml"
    merged.write_text("base: &b {lr: 0.1, epochs: 2}\ntraining:\n  <<: *b\n  lr: 0.5\n")
    from instructrec.data.yamlfile import read_yaml_mapping

    assert read_yaml_mapping(merged)["training"] == {"lr": 0.5, "epochs": 2}


def test_tune_takes_set_and_refuses_its_old_flags(tmp_path):
    data = tmp_path / "t.tsv"
    data.write_text("q\tyes\n")
    base = ["tune", "--data", str(data), "--out", str(tmp_path / "o")]
    for old, hint in [(["--lr", "0.1"], "--set train.lr=0.1"), (["--full"], "--set lora=null")]:
        res = CliRunner().invoke(main, [*base, *old])
        assert res.exit_code == 2 and hint in res.output
    res = CliRunner().invoke(main, [*base, "--set", "train.epochs=two"])
    assert res.exit_code == 2 and "train.epochs" in res.output
    assert not (tmp_path / "o").exists()


def test_instructions_build_takes_set(tmp_path):
    res = CliRunner().invoke(
        main,
        ["instructions", "build", "--out", str(tmp_path / "i.jsonl"), "--set", "per_user=many"],
    )
    assert res.exit_code == 2 and "per_user" in res.output


def test_games_gpu_config_is_games_yaml_with_only_the_gpu_changes():
    """configs/games-gpu.yaml is the experiment "games.yaml without the instance cap, SASRec on
    the GPU": any other difference would confound its comparison with the capped runs."""
    cpu = RunConfig.from_yaml(REPO / "configs" / "games.yaml").to_dict()
    gpu = RunConfig.from_yaml(REPO / "configs" / "games-gpu.yaml").to_dict()
    assert cpu["reranker"]["max_instances"] == 8000 and gpu["reranker"]["max_instances"] is None
    for spec in (gpu["retriever"], *[p for p in gpu["priors"] if p["name"] == "sasrec"]):
        assert spec["options"]["device"] == "auto" and spec["options"]["threads"] == 0
    gpu["reranker"]["max_instances"] = 8000
    for spec in (gpu["retriever"], *gpu["priors"]):
        if spec["name"] == "sasrec":
            spec["options"].pop("device")
            spec["options"]["threads"] = 2
    assert gpu == cpu


def test_games_titleknn_config_is_games_yaml_plus_the_text_prior_cold_channel_and_dropout():
    """configs/games-titleknn.yaml (the current Games configuration) differs from games.yaml
    in the titleknn prior, cold_dropout, cold_fill and intent_dropout (0.5, as the shipped
    ML-100K one, since session 25) only, so its validation figures compare with games.yaml's;
    games.yaml keeps the reported runs' reranker (no cold channel, intent_dropout 0)."""
    base = RunConfig.from_yaml(REPO / "configs" / "games.yaml").to_dict()
    tk = RunConfig.from_yaml(REPO / "configs" / "games-titleknn.yaml").to_dict()
    assert [p["name"] for p in tk["priors"]] == [p["name"] for p in base["priors"]] + ["titleknn"]
    assert base["reranker"]["cold_dropout"] == 0.0 and tk["reranker"]["cold_dropout"] == 0.1
    assert tk["reranker"]["cold_fill"] == "catalogue"
    assert base["reranker"]["intent_dropout"] == 0.0
    assert tk["reranker"]["intent_dropout"] == RunConfig().reranker.intent_dropout == 0.5
    tk["priors"].pop()
    tk["reranker"]["cold_dropout"] = 0.0
    tk["reranker"]["cold_fill"] = base["reranker"]["cold_fill"]  # unused without the channel
    tk["reranker"]["intent_dropout"] = 0.0
    assert tk == base


def test_the_shipped_reranker_has_the_cold_channel_and_a_saved_one_keeps_its_own():
    """RunConfig() (= quickstart.yaml) ships the titleknn and EASE priors, cold_dropout 0.1
    and cold_fill catalogue; RerankerConfig's own defaults (what a saved reranker without these
    keys is read with) stay without them, so a model saved earlier scores as it did."""
    from instructrec.rerank.reranker import RerankerConfig

    cfg = RunConfig()
    assert [p.name for p in cfg.priors] == ["sasrec", "itemknn", "pop", "titleknn", "ease"]
    assert cfg.priors[-1].options == {"l2": 100.0}  # the lambda chosen on validation
    assert (cfg.reranker.cold_dropout, cfg.reranker.cold_fill) == (0.1, "catalogue")
    plain = RerankerConfig()
    assert (plain.cold_dropout, plain.cold_fill) == (0.0, "list")
    assert RunConfig.from_dict({}) == cfg
    partial = RunConfig.from_dict({"reranker": {"n_random": 4}})
    assert partial.reranker.cold_fill == "catalogue" and partial.reranker.n_random == 4


@pytest.mark.parametrize("name", ["quickstart-mpnet.yaml", "quickstart-nomic.yaml"])
def test_the_larger_tower_configs_are_the_shipped_one_with_another_tower(name):
    """configs/quickstart-{mpnet,nomic}.yaml differ from the shipped configuration in the
    backbone (the offline registry key) and its LoRA targets (null: the architecture's own)
    only: the same five priors (EASE the fifth since session 24), the same reranker and
    training."""
    from instructrec.models.offline import OFFLINE_BACKBONES

    mp = RunConfig.from_yaml(REPO / "configs" / name).to_dict()
    assert mp["backbone"]["backbone"] in OFFLINE_BACKBONES
    assert mp["backbone"]["lora_targets"] is None
    shipped = RunConfig().to_dict()
    mp["backbone"].update(backbone=None, lora_targets=shipped["backbone"]["lora_targets"])
    assert mp == shipped
