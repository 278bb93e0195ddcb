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
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .bert_files import (
    FastTokenizer,
    LiteConfig,
    checkpoint_state,
    lora_pairs,
    tokenizer_max_length,
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
        ours = checkpoint_state(state, len(self.layers))
        self.load_state_dict({k: v.float() for k, v in ours.items()}, assign=True)

    def merge_lora(self, state: dict[str, torch.Tensor], scaling: float) -> int:
        """Merge peft LoRA weights (keys ``...encoder.layer.{i}.attention.self.{query|value}
        .lora_A.default.weight`` / ``lora_B``, any prefix) into the layers; returns how many
        linear layers were adapted (a `ValueError` for an adapter on a module we lack)."""
        n = 0
        for i, mine, ab in lora_pairs(state):
            target = getattr(self.layers[i], mine)
            if not isinstance(target, AdaptedLinear):
                raise ValueError(f"LoRA weights for an unsupported module: layer {i} {mine}")
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


def load_lite(path: str | Path) -> tuple[FastTokenizer, BertLite]:
    """(tokenizer, encoder in eval mode) from a local BERT directory (see `supports`); the
    safetensors file is memory-mapped and its tensors become the parameters (no copy for fp32)."""
    from safetensors.torch import load_file

    path = Path(path)
    config = LiteConfig.from_dir(path)
    model = BertLite(config)  # (a `torch.device("meta")` block would import torch._dynamo: +2 s)
    model.load_checkpoint(load_file(str(path / "model.safetensors")))
    return FastTokenizer(path, tokenizer_max_length(path, config)), model.eval()


__all__ = ["BertLite", "load_lite"]
