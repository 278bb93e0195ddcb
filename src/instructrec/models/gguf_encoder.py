"""A nomic-bert GGUF (llama.cpp's layout) as a `transformers` NomicBertModel directory.

nomic-embed-text-v1.5 (Nussbaum et al. 2024, "Nomic Embed: Training a Reproducible Long Context
Text Embedder") reaches this machine only as llama.cpp's ``nomic-embed-text-v1.5.f16.gguf``
inside a zip split over PyPI packages (`models.offline`). `transformers` reads GGUF files of
decoder models only, so this module maps the tensors itself:

    token_embd / token_types / token_embd_norm     -> embeddings.{word,token_type}_embeddings,
                                                      embeddings.LayerNorm
    blk.N.attn_qkv (q, k, v stacked on the rows)   -> layers.N.self_attn.{q,k,v}_proj
    blk.N.attn_output, attn_output_norm            -> layers.N.self_attn.o_proj,
                                                      layers.N.post_attention_layernorm
    blk.N.ffn_gate / ffn_up / ffn_down             -> layers.N.mlp.{gate,up,down}_proj
                                                      (SwiGLU: down(silu(gate x) * up x))
    blk.N.layer_output_norm                        -> layers.N.post_mlp_layernorm

and rebuilds the WordPiece vocabulary, which llama.cpp stores with a word-start marker
("\u2581the") instead of BERT's continuation marker ("##ing"). The result is a plain
``save_pretrained`` directory (float32 safetensors + tokenizer) that `AutoModel` loads.
Only float32/float16 tensors are read (the packaged file is f16).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ARCH = "nomic-bert"
_WORD_START = "\u2581"


def _field(reader, key: str):
    if key not in reader.fields:
        raise ValueError(f"GGUF metadata {key!r} missing (not a {ARCH} file?)")
    return reader.fields[key].contents()


def wordpiece_vocab(tokens: list[str]) -> list[str]:
    """BERT's vocabulary from llama.cpp's: "\u2581word" -> "word", "piece" -> "##piece";
    special tokens ("[CLS]", "[unused0]") unchanged."""
    out = []
    for t in tokens:
        if t.startswith("[") and t.endswith("]"):
            out.append(t)
        elif t.startswith(_WORD_START):
            out.append(t[len(_WORD_START) :])
        else:
            out.append("##" + t)
    return out


def nomic_state_dict(tensors: dict[str, np.ndarray], hidden: int, layers: int) -> dict:
    """NomicBertModel's state dict from GGUF tensors (numpy arrays in PyTorch's shape)."""
    import torch

    def t(name: str):
        if name not in tensors:
            raise ValueError(f"GGUF tensor {name!r} missing")
        return torch.from_numpy(np.array(tensors[name], dtype=np.float32))

    sd = {
        "embeddings.word_embeddings.weight": t("token_embd.weight"),
        "embeddings.token_type_embeddings.weight": t("token_types.weight"),
        "embeddings.LayerNorm.weight": t("token_embd_norm.weight"),
        "embeddings.LayerNorm.bias": t("token_embd_norm.bias"),
    }
    for i in range(layers):
        b, o = f"blk.{i}.", f"layers.{i}."
        qkv = t(b + "attn_qkv.weight")
        if qkv.shape[0] != 3 * hidden:
            raise ValueError(
                f"{b}attn_qkv.weight has shape {tuple(qkv.shape)}, not (3x{hidden}, ...)"
            )
        q, k, v = qkv.split(hidden, 0)
        sd[o + "self_attn.q_proj.weight"] = q.clone()
        sd[o + "self_attn.k_proj.weight"] = k.clone()
        sd[o + "self_attn.v_proj.weight"] = v.clone()
        sd[o + "self_attn.o_proj.weight"] = t(b + "attn_output.weight")
        sd[o + "post_attention_layernorm.weight"] = t(b + "attn_output_norm.weight")
        sd[o + "post_attention_layernorm.bias"] = t(b + "attn_output_norm.bias")
        sd[o + "mlp.gate_proj.weight"] = t(b + "ffn_gate.weight")
        sd[o + "mlp.up_proj.weight"] = t(b + "ffn_up.weight")
        sd[o + "mlp.down_proj.weight"] = t(b + "ffn_down.weight")
        sd[o + "post_mlp_layernorm.weight"] = t(b + "layer_output_norm.weight")
        sd[o + "post_mlp_layernorm.bias"] = t(b + "layer_output_norm.bias")
    return sd


def convert_nomic_gguf(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir`` (config.json, model.safetensors, tokenizer) from a nomic-bert GGUF.
    A `ValueError` names what is missing or of another shape."""
    from gguf import GGUFReader
    from transformers import BertTokenizerFast, NomicBertConfig, NomicBertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # save_pretrained's shard bar

    reader = GGUFReader(str(gguf_path))
    arch = _field(reader, "general.architecture")
    if arch != ARCH:
        raise ValueError(f"{gguf_path}: GGUF architecture {arch!r}, expected {ARCH!r}")
    tok_field = reader.fields.get("tokenizer.ggml.tokens")
    if tok_field is None:
        raise ValueError(f"{gguf_path}: GGUF metadata 'tokenizer.ggml.tokens' missing")
    tokens = [bytes(tok_field.parts[i]).decode("utf-8") for i in tok_field.data]
    hidden = int(_field(reader, f"{ARCH}.embedding_length"))
    n_layers = int(_field(reader, f"{ARCH}.block_count"))
    config = NomicBertConfig(
        vocab_size=len(tokens),
        hidden_size=hidden,
        num_hidden_layers=n_layers,
        num_attention_heads=int(_field(reader, f"{ARCH}.attention.head_count")),
        intermediate_size=int(_field(reader, f"{ARCH}.feed_forward_length")),
        max_position_embeddings=int(_field(reader, f"{ARCH}.context_length")),
        layer_norm_eps=float(_field(reader, f"{ARCH}.attention.layer_norm_epsilon")),
        type_vocab_size=2,
        pad_token_id=int(_field(reader, "tokenizer.ggml.padding_token_id")),
        rope_parameters={
            "rope_type": "default",
            "rope_theta": float(_field(reader, f"{ARCH}.rope.freq_base")),
        },
    )
    tensors = {}
    for rt in reader.tensors:
        if rt.tensor_type.name not in ("F32", "F16"):
            raise ValueError(f"GGUF tensor {rt.name} is {rt.tensor_type.name}; only F32/F16 read")
        shape = [int(x) for x in reversed(rt.shape)]  # GGUF lists the fastest axis first
        tensors[rt.name] = np.asarray(rt.data, dtype=np.float32).reshape(shape)
    model = NomicBertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(
        nomic_state_dict(tensors, hidden, n_layers), strict=False
    )
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise ValueError(f"{gguf_path}: weights missing {missing[:3]}, unexpected {unexpected[:3]}")
    out = Path(out_dir)
    model.save_pretrained(out)
    vocab = wordpiece_vocab(tokens)
    tok = BertTokenizerFast(
        vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True, model_max_length=512
    )
    tok.save_pretrained(out)
    return out
