"""A torch-only BERT/MiniLM encoder for inference: the same weights, the same vectors, no
`transformers` or `peft` import.

BERT (Devlin et al. 2019) as `transformers.BertModel` computes it (absolute positions, post-
LayerNorm, GELU), enough to serve the encoder reranker's query tower: `instructrec recommend`
loads a run in about a second less of imports than transformers + peft cost (see
benchmarks/bench_cli_load.py). The tower's LoRA adapters (Hu et al. 2021) are merged into the
query/value weights at load time (W + B A alpha/r); ``disable_adapter()`` switches back to the
base weights, as peft's context manager of the same name does (item texts outside the cache are
encoded by the frozen backbone).

    tok, model = load_lite("path/to/all-MiniLM-L6-v2")   # tokenizer.json + model.safetensors
    h = model(**tok(["a light comedy"], padding=True, return_tensors="pt")).last_hidden_state

Only BERT-style encoders (model_type bert, absolute positions, gelu) are supported;
`supports` says whether a backbone directory qualifies (else callers load transformers).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

LORA_KEY = "lora_"  # peft's adapter parameter names: ...query.lora_A.default.weight


@dataclass
class LiteConfig:
    """The fields of a BERT config.json this encoder reads."""

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


def supports(path: str | Path) -> bool:
    """Whether ``path`` is a local BERT-style encoder this module can load exactly."""
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


class AdaptedLinear(nn.Linear):
    """A linear layer holding its base weight and, once `merge_lora` ran, the merged one."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__(n_in, n_out)
        self.merged: torch.Tensor | None = None
        self.use_adapter = True

    def merge_lora(self, a: torch.Tensor, b: torch.Tensor, scaling: float) -> None:
        self.merged = self.weight.detach() + (b.float() @ a.float()) * scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.merged if self.merged is not None and self.use_adapter else self.weight
        return F.linear(x, w, self.bias)


class Layer(nn.Module):
    def __init__(self, c: LiteConfig) -> None:
        super().__init__()
        d = c.hidden_size
        self.n_heads = c.num_attention_heads
        self.query = AdaptedLinear(d, d)
        self.key = AdaptedLinear(d, d)
        self.value = AdaptedLinear(d, d)
        self.attn_out = nn.Linear(d, d)
        self.attn_norm = nn.LayerNorm(d, eps=c.layer_norm_eps)
        self.inter = nn.Linear(d, c.intermediate_size)
        self.out = nn.Linear(c.intermediate_size, d)
        self.out_norm = nn.LayerNorm(d, eps=c.layer_norm_eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.n_heads

        def heads(y):
            return y.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        a = a.transpose(1, 2).reshape(b, t, d)
        x = self.attn_norm(x + self.attn_out(a))
        return self.out_norm(x + self.out(F.gelu(self.inter(x))))


# our module path -> the BertModel checkpoint's (per layer: "encoder.layer.{i}." + value)
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


@dataclass
class Output:
    last_hidden_state: torch.Tensor


class BertLite(nn.Module):
    """`BertModel` without the pooler: ``forward(input_ids, attention_mask)`` ->
    ``.last_hidden_state`` (B, T, d)."""

    def __init__(self, config: LiteConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.word = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.emb_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.layers = nn.ModuleList(Layer(c) for _ in range(c.num_hidden_layers))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> Output:
        t = input_ids.shape[1]
        pos = torch.arange(t, device=input_ids.device)
        types = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
        x = self.word(input_ids) + self.token_type(types) + self.position(pos)[None]
        x = self.emb_norm(x)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        # additive mask (B, 1, 1, T): 0 where attended, dtype-min where padded (as BertModel)
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, bias)
        return Output(x)

    def load_checkpoint(self, state: dict[str, torch.Tensor]) -> None:
        """Take a `BertModel` state dict (keys with or without a ``bert.`` prefix)."""
        state = {k.removeprefix("bert."): v for k, v in state.items()}
        ours = {
            "word.weight": "embeddings.word_embeddings.weight",
            "position.weight": "embeddings.position_embeddings.weight",
            "token_type.weight": "embeddings.token_type_embeddings.weight",
            "emb_norm.weight": "embeddings.LayerNorm.weight",
            "emb_norm.bias": "embeddings.LayerNorm.bias",
        }
        for i in range(len(self.layers)):
            for mine, theirs in LAYER_KEYS.items():
                for p in ("weight", "bias"):
                    ours[f"layers.{i}.{mine}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
        missing = [v for v in ours.values() if v not in state]
        if missing:
            raise ValueError(f"not a BERT checkpoint: missing {missing[:3]}")
        self.load_state_dict({k: state[v].float() for k, v in ours.items()}, assign=True)

    def merge_lora(self, state: dict[str, torch.Tensor], scaling: float) -> int:
        """Merge peft LoRA weights (keys ``...encoder.layer.{i}.attention.self.{query|value}
        .lora_A.default.weight`` / ``lora_B``, any prefix) into the layers; returns how many
        linear layers were adapted (a `ValueError` for an adapter on a module we lack)."""
        pairs: dict[str, dict[str, torch.Tensor]] = {}
        for k, v in state.items():
            if LORA_KEY not in k:
                continue
            module, rest = k.split(".lora_", 1)
            pairs.setdefault(module, {})[rest[0]] = v  # "A" or "B"
        back = {theirs: mine for mine, theirs in LAYER_KEYS.items()}
        n = 0
        for module, ab in pairs.items():
            tail = module[module.index("encoder.layer.") + len("encoder.layer.") :]
            i, theirs = tail.split(".", 1)
            mine = back.get(theirs)
            target = getattr(self.layers[int(i)], mine, None) if mine else None
            if not isinstance(target, AdaptedLinear) or set(ab) != {"A", "B"}:
                raise ValueError(f"LoRA weights for an unsupported module: {module}")
            target.merge_lora(ab["A"], ab["B"], scaling)
            n += 1
        return n

    @contextlib.contextmanager
    def disable_adapter(self):
        """The base weights inside the block (peft's ``disable_adapter``)."""
        lins = [m for m in self.modules() if isinstance(m, AdaptedLinear)]
        for m in lins:
            m.use_adapter = False
        try:
            yield
        finally:
            for m in lins:
                m.use_adapter = True


class FastTokenizer:
    """The ``tokenizer(texts, padding=True, truncation=True, max_length=N,
    return_tensors="pt")`` call of a transformers fast tokenizer, straight on `tokenizers`."""

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
    ) -> dict[str, torch.Tensor]:
        limit = (max_length or self.model_max_length) if truncation else None
        if limit != self._limit:  # the Rust tokenizer truncates (special tokens kept)
            if limit is None:
                self.tok.no_truncation()
            else:
                self.tok.enable_truncation(limit)
            self._limit = limit
        enc = self.tok.encode_batch(list(texts))
        width = max((len(e.ids) for e in enc), default=0)
        out = torch.full((len(enc), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(enc), width), dtype=torch.long)
        for i, e in enumerate(enc):
            n = len(e.ids)
            out[i, :n] = torch.tensor(e.ids, dtype=torch.long)
            mask[i, :n] = 1
        return {"input_ids": out, "attention_mask": mask}


def load_lite(path: str | Path) -> tuple[FastTokenizer, BertLite]:
    """(tokenizer, encoder in eval mode) from a local BERT directory (see `supports`); the
    safetensors file is memory-mapped and its tensors become the parameters (no copy for fp32)."""
    from safetensors.torch import load_file

    path = Path(path)
    config = LiteConfig.from_dir(path)
    model = BertLite(config)  # (a `torch.device("meta")` block would import torch._dynamo: +2 s)
    model.load_checkpoint(load_file(str(path / "model.safetensors")))
    max_len = config.max_position_embeddings
    tcfg = path / "tokenizer_config.json"
    if tcfg.exists():
        max_len = min(max_len, int(json.loads(tcfg.read_text()).get("model_max_length", max_len)))
    return FastTokenizer(path, max_len), model.eval()


def lora_scaling(alpha: float, r: int) -> float:
    """peft's LoRA scaling (alpha / r; rank-stabilised variants are not used here)."""
    return float(alpha) / float(r) if r else 0.0


__all__ = ["BertLite", "FastTokenizer", "LiteConfig", "load_lite", "lora_scaling", "supports"]
