"""Generic instruction tuning: the reader, answers, truncation, seeding and the Python API."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from instructrec.data.errors import DataError
from instructrec.data.instruction_data import normalize_answer, read_instruction_data
from instructrec.models.answers import AnswerLM, middle_truncate
from instructrec.models.lora import LoraSettings
from instructrec.training.config import TrainConfig
from instructrec.training.tune import tune
from instructrec.training.tune_config import TuneConfig, auc, split_rows, yes_no_labels
from instructrec.training.tuned import AnswerSpec, TunedModel


def write_json(path, rows):
    path.write_text(json.dumps(rows))
    return path


def alpaca(rows, yes="Yes.", no="no"):
    return [{"instruction": q, "input": "", "output": yes if a == "yes" else no} for q, a in rows]


def small_config(out, valid_fraction=0.34, **train):
    base = dict(
        output_dir=str(out),
        lr=3e-2,
        epochs=3,
        batch_size=4,
        warmup_ratio=0.0,
        progress=False,
        device="cpu",
        eval_every=100,
    )
    base.update(train)
    return TuneConfig(
        train=TrainConfig(**base), valid_fraction=valid_fraction, lora=LoraSettings(r=4)
    )


# ---- reader ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "records,needle",
    [
        (
            [{"instruction": "a", "output": "yes"}, {"instruction": None, "output": "no"}],
            r"record 1:.*instruction is null",
        ),
        (
            [{"instruction": "a", "output": "yes"}, {"instruction": "b", "output": " "}],
            r"record 1:.*output is empty",
        ),
        ([{"instruction": "", "output": "yes"}], r"record 0:.*instruction is empty"),
        ([{"instruction": "a", "output": None}], r"record 0:.*output is null"),
    ],
)
def test_reader_refuses_null_or_empty_fields_with_the_record(tmp_path, records, needle):
    with pytest.raises(DataError, match=needle):
        read_instruction_data(write_json(tmp_path / "d.json", records))


def test_reader_tsv_empty_answer_names_the_line_and_unlabelled_files(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("instruction\tanswer\nIs it good?\tyes\nIs it bad?\t \n")
    with pytest.raises(DataError, match="line 3"):
        read_instruction_data(p)
    u = write_json(tmp_path / "u.json", [{"instruction": "a"}, {"instruction": "b"}])
    with pytest.raises(DataError, match="output"):
        read_instruction_data(u)
    data = read_instruction_data(u, require_output=False)
    assert len(data) == 2 and not data.has_outputs
    mixed = write_json(
        tmp_path / "m.json", [{"instruction": "a", "output": "x"}, {"instruction": "b"}]
    )
    with pytest.raises(DataError, match="record 1"):
        read_instruction_data(mixed, require_output=False)


# ---- answers and truncation ------------------------------------------------------------
def test_answers_are_normalised_the_same_everywhere():
    assert {normalize_answer(a) for a in ["Yes.", "yes", " YES! ", '"Yes"']} == {"yes"}
    assert normalize_answer("Sci-Fi.") == "sci-fi"
    spec = AnswerSpec.infer(["Yes.", "yes", "Yes.", "No", "no."])
    assert spec.task == "closed" and spec.answers == ["no", "yes"]
    assert spec.target("YES") == spec.target("yes.") == "Yes"  # most common spelling
    assert spec.positive() == "yes"
    assert AnswerSpec.infer([f"answer {i}" for i in range(30)]).task == "open"
    with pytest.raises(DataError, match="allowed answers"):
        spec.target("maybe")


def test_middle_truncation_keeps_start_and_end():
    ids = list(range(100))
    out, cut = middle_truncate(ids, 10)
    assert out == [0, 1, 2, 3, 4, 95, 96, 97, 98, 99] and cut == 90
    assert middle_truncate(ids, 0) == (ids, 0) and middle_truncate(ids, 200) == (ids, 0)


def test_long_prompt_keeps_its_question(tiny_gpt2_dir):
    from instructrec.models.causal import CausalScorer

    lm = AnswerLM(CausalScorer.from_pretrained(str(tiny_gpt2_dir)), max_length=24)
    question = " Is Heat a comedy?"
    prompt = "Toy Story liked. " * 40 + question
    (ids,) = lm.prompt_ids([prompt])
    whole = lm.tokenizer.encode(lm.render(prompt))
    assert len(ids) == 24 and lm.truncated == 1 and lm.tokens_cut == len(whole) - 24
    assert ids[-12:] == whole[-12:] and ids[:12] == whole[:12]
    assert lm.tokenizer.decode(ids).endswith(lm.render(question)[-10:])


@pytest.mark.parametrize("arch", ["gpt2", "llama", "t5"])
def test_closed_scores_equal_the_answer_likelihood(tmp_path, arch):
    """Prompt read once + cached continuation == prompt and answer read together."""
    from instructrec.models.causal import CausalScorer
    from instructrec.models.seq2seq import Seq2SeqScorer
    from instructrec.testing.tiny import tiny_causal, tiny_t5

    path = tiny_t5(tmp_path) if arch == "t5" else tiny_causal(tmp_path, arch=arch)
    cls = Seq2SeqScorer if arch == "t5" else CausalScorer
    lm = AnswerLM(cls.from_pretrained(str(path), lora=LoraSettings(r=4)), batch_size=3)
    prompts = ["Is Toy Story a comedy?", "Is Heat (1995) a long action film?", "x", "Babe?"]
    answers = ["Yes", "No", "Comedy Drama"]
    got = lm.answer_logprobs(prompts, answers)
    lm.model.eval()
    for i, p in enumerate(prompts):
        for j, a in enumerate(answers):
            b = lm.collate([(p, a)])
            with torch.no_grad():
                logits = lm.model(**b).logits.float()
            labels = b["labels"]
            if arch != "t5":
                logits, labels = logits[:, :-1], labels[:, 1:]
            ref = lm._gather(torch.log_softmax(logits, -1), labels).item()
            assert got[i, j] == pytest.approx(ref, abs=1e-4)


# ---- tuning ----------------------------------------------------------------------------
def test_tune_without_validation_runs_fixed_epochs_and_round_trips(
    tmp_path, tiny_gpt2_dir, yesno_rows
):
    data = write_json(tmp_path / "train.json", alpaca(yesno_rows))
    res = tune(data, str(tiny_gpt2_dir), small_config(tmp_path / "run", valid_fraction=0.0))
    assert res.n_valid == 0 and res.valid_metrics is None and res.n_train == len(yesno_rows)
    assert res.train.steps == 3 * 3  # 3 epochs x ceil(12 / 4) batches
    assert res.max_length == max(res.model.engine.full_length([q for q, _ in yesno_rows]))
    assert res.truncated == 0
    preds = res.model.predict(alpaca(yesno_rows))
    assert set(preds[0]["probs"]) == {"Yes", "no"}  # the spellings trained on
    assert all(abs(sum(p["probs"].values()) - 1) < 1e-5 for p in preds)
    again = TunedModel.load(tmp_path / "run").predict(alpaca(yesno_rows))
    for a, b in zip(preds, again, strict=True):
        assert a["answer"] == b["answer"]
        assert a["probs"]["Yes"] == pytest.approx(b["probs"]["Yes"], abs=1e-5)
    assert not list(tmp_path.glob(".run.tmp-*"))  # the temporary run directory was renamed


def test_tuning_learns_a_planted_yes_no_task(tmp_path, tiny_gpt2_dir, yesno_rows):
    data = write_json(tmp_path / "train.json", alpaca(yesno_rows))
    cfg = small_config(tmp_path / "r", valid_fraction=0.0, epochs=30, lr=3e-3)
    cfg.lora = None  # a tiny random model learns faster with all its weights
    res = tune(data, str(tiny_gpt2_dir), cfg)
    _, m = res.model.evaluate(alpaca(yesno_rows))
    majority = max(sum(a == "yes" for _, a in yesno_rows), sum(a == "no" for _, a in yesno_rows))
    assert m["auc"] >= 0.9 and m["accuracy"] > majority / len(yesno_rows)
    assert m["auc_ci"][0] <= m["auc"] <= m["auc_ci"][1]


def test_same_seed_same_predictions(tmp_path, tiny_gpt2_dir, yesno_rows):
    data = write_json(tmp_path / "train.json", alpaca(yesno_rows))
    probs = []
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        res = tune(data, str(tiny_gpt2_dir), small_config(tmp_path / name, seed=seed, epochs=1))
        probs.append([p["probs"]["Yes"] for p in res.model.predict(alpaca(yesno_rows))])
    assert probs[0] == probs[1]
    assert probs[0] != probs[2]


def test_existing_run_is_refused_unless_overwrite(tmp_path, tiny_gpt2_dir, yesno_rows):
    data = write_json(tmp_path / "train.json", alpaca(yesno_rows))
    cfg = small_config(tmp_path / "run", valid_fraction=0.0, epochs=1)
    tune(data, str(tiny_gpt2_dir), cfg)
    with pytest.raises(DataError, match="--overwrite"):
        tune(data, str(tiny_gpt2_dir), cfg)
    res = tune(data, str(tiny_gpt2_dir), cfg, overwrite=True)
    assert (tmp_path / "run" / "model" / "tuned.json").exists() and res.n_train == 12


def test_encoder_backbone_classifies_closed_answers_only(tmp_path, yesno_rows):
    data = write_json(tmp_path / "train.json", alpaca(yesno_rows))
    cfg = small_config(tmp_path / "m", valid_fraction=0.0, epochs=1, lr=1e-3)
    res = tune(data, "all-minilm-l6-v2", cfg)
    assert res.model.info["engine"] == "label_head"
    a = res.model.predict(alpaca(yesno_rows[:3]))
    b = TunedModel.load(tmp_path / "m").predict(alpaca(yesno_rows[:3]))
    assert [x["probs"]["Yes"] for x in a] == pytest.approx([x["probs"]["Yes"] for x in b])
    open_rows = [{"instruction": f"Say {i}", "output": f"number {i}"} for i in range(12)]
    cfg = small_config(tmp_path / "o", valid_fraction=0.0, epochs=1)
    with pytest.raises(DataError, match="generative backbone"):
        tune(write_json(tmp_path / "open.json", open_rows), "all-minilm-l6-v2", cfg)


def test_label_head_pooling_and_dropout_reach_the_model_and_survive_saving(tmp_path, yesno_rows):
    assert TuneConfig().pooling == "mean" and TuneConfig().head_dropout == 0.0  # docs' defaults
    data = write_json(tmp_path / "train.json", alpaca(yesno_rows))
    probs = {}
    for pooling in ("mean", "cls", "mean+last-line"):
        cfg = small_config(tmp_path / pooling, valid_fraction=0.0, epochs=1, lr=1e-3)
        cfg.pooling, cfg.head_dropout = pooling, 0.3
        res = tune(data, "all-minilm-l6-v2", cfg)
        engine = res.model.engine
        assert engine.pooling == pooling and engine.dropout.p == 0.3
        loaded = TunedModel.load(tmp_path / pooling)
        assert loaded.engine.pooling == pooling and loaded.engine.dropout.p == 0.3
        probs[pooling] = [x["probs"]["Yes"] for x in res.model.predict(alpaca(yesno_rows[:4]))]
        again = [x["probs"]["Yes"] for x in loaded.predict(alpaca(yesno_rows[:4]))]
        assert again == pytest.approx(probs[pooling])  # dropout is off when predicting
    assert probs["mean"] != pytest.approx(probs["cls"])
    assert probs["mean+last-line"] != pytest.approx(probs["mean"])
    cfg = small_config(tmp_path / "bad", valid_fraction=0.0, epochs=1)
    cfg.pooling = "max"
    with pytest.raises(DataError, match="pooling must be one of mean, cls"):
        tune(data, "all-minilm-l6-v2", cfg)
    with pytest.raises(DataError, match="pooling"):
        TuneConfig.from_dict({"pooling": 3})


def test_last_line_pooling_reads_the_question_tokens_even_when_the_middle_is_cut():
    from instructrec.models.label_head import LabelClassifier
    from instructrec.models.offline import load_any

    bb = load_any("all-minilm-l6-v2", "encoder")
    head = LabelClassifier(bb, ["Yes", "No"], max_length=64, pooling="mean+last-line")
    history = "\n".join(f"{k}. Some movie number {k} - liked" for k in range(30))
    texts = [history + '\nWill the user like "Heat (1995)"? Answer Yes or No.\n',
             "one line only", "first\n\nlast words"]  # fmt: skip
    batch = head.encode(texts)
    assert head.truncated == 1 and batch["input_ids"].shape[1] == 64
    read = [
        bb.tokenizer.decode(ids[m.bool()].tolist())
        for ids, m in zip(batch["input_ids"], batch["last_line_mask"], strict=True)
    ]
    assert read == ['will the user like " heat ( 1995 ) "? answer yes or no.', "one line only",
                    "last words"]  # fmt: skip
    # the question's vector is its own: the same question after another history moves the
    # mean part more than the last-line part
    other = "\n".join(f"{k}. A different film {k} - disliked" for k in range(3))
    b2 = head.encode([other + '\nWill the user like "Heat (1995)"? Answer Yes or No.'])
    with torch.no_grad():
        h1 = head.encoder(
            input_ids=batch["input_ids"][:1], attention_mask=batch["attention_mask"][:1]
        ).last_hidden_state
        h2 = head.encoder(**{k: b2[k] for k in ("input_ids", "attention_mask")}).last_hidden_state

    def pooled(h, mask):
        m = mask[0].bool()
        return h[0][m].mean(0)

    cos = torch.nn.functional.cosine_similarity
    q = cos(pooled(h1, batch["last_line_mask"][:1]), pooled(h2, b2["last_line_mask"]), dim=0)
    mean = cos(pooled(h1, batch["attention_mask"][:1]), pooled(h2, b2["attention_mask"]), dim=0)
    assert q > mean


def test_open_answers_are_generated(tmp_path, tiny_gpt2_dir):
    rows = [{"instruction": f"Repeat {i}", "output": f"{i} {i}"} for i in range(10)]
    data = write_json(tmp_path / "open.json", rows)
    cfg = small_config(tmp_path / "o", valid_fraction=0.0, epochs=1)
    cfg.max_new_tokens = 3
    res = tune(data, str(tiny_gpt2_dir), cfg)
    preds, m = res.model.evaluate(rows[:4])
    assert res.model.spec.task == "open" and all(isinstance(p["answer"], str) for p in preds)
    assert 0.0 <= m["exact_match"] <= 1.0 and "auc" not in m


# ---- offline backbones -----------------------------------------------------------------
def test_hub_id_fails_fast_offline(monkeypatch):
    import socket

    from instructrec.models import offline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="offline"):
        offline.load_any("nobody/nothing-here")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def refuse(*a, **k):
        raise OSError("unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert offline.hub_offline()
    with pytest.raises(DataError, match="offline"):
        offline.check_reachable("nobody/nothing-here")


def test_weights_with_a_wrong_hash_are_refused(tmp_path, monkeypatch):
    from instructrec.models import offline

    pkg = tmp_path / "fake_weights_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "model.gguf").write_bytes(b"not the pinned weights")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = offline.OfflineBackbone(
        package="fake-weights-pkg",
        module="fake_weights_pkg",
        version="",
        kind="causal",
        file="model.gguf",
        sha256="0" * 64,
    )
    monkeypatch.setitem(offline.OFFLINE_BACKBONES, "fake", entry)
    with pytest.raises(DataError, match="SHA-256"):
        offline.load_any("fake")
    assert "fake_weights_pkg" not in sys.modules  # located, never imported
    good = offline.OfflineBackbone(
        **{**entry.__dict__, "sha256": offline.file_sha256(pkg / "model.gguf")}
    )
    monkeypatch.setitem(offline.OFFLINE_BACKBONES, "fake", good)
    assert offline.offline_path("fake") == (pkg, "model.gguf")


# ---- helpers ---------------------------------------------------------------------------
def test_auc_and_yes_no_labels():
    rng = np.random.default_rng(0)
    s, y = rng.normal(size=40), rng.integers(0, 2, 40)
    brute = np.mean(
        [
            (a > b) + 0.5 * (a == b)
            for a, la in zip(s, y, strict=True)
            for b, lb in zip(s, y, strict=True)
            if la == 1 and lb == 0
        ]
    )
    assert auc(s, y) == pytest.approx(brute)
    assert np.isnan(auc(np.array([1.0, 2.0]), np.array([1, 1])))
    assert yes_no_labels(["Yes", "no.", "YES"]).tolist() == [1, 0, 1]
    assert yes_no_labels(["yes", "maybe"]) is None


def test_split_rows_is_seeded_and_disjoint():
    tr, va = split_rows(50, 0.2, 500, seed=1)
    assert len(va) == 10 and not set(tr) & set(va) and len(tr) + len(va) == 50
    assert np.array_equal(va, split_rows(50, 0.2, 500, seed=1)[1])
    tr, va = split_rows(7, 0.0, 500, seed=1)
    assert len(tr) == 7 and len(va) == 0
    with pytest.raises(DataError, match="at least 2"):
        split_rows(1, 0.1, 500, 0)
    strata = np.array([1] * 5 + [0] * 45)
    for seed in range(5):
        _, va = split_rows(50, 0.2, 500, seed, strata=strata)
        assert strata[va].sum() == 1  # 20% of the 5 positives
