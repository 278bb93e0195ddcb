"""A NumPy BERT/MiniLM encoder for inference: `bert_lite`'s computation without torch.

`instructrec recommend` answers one request from a fresh process; importing torch alone is
about as long as everything else it does (docs/speed.md). This tower computes what
`bert_lite.BertLite` (and so `transformers.BertModel`) computes, in float32 NumPy: absolute
positions, post-LayerNorm, exact (erf) GELU, the additive attention mask of BertModel; the
run's LoRA weights merged into the query/key/value weights (W + B A alpha/r). The weights are
read with `safetensors.numpy`; the tokenizer is `bert_files.FastTokenizer`. Vectors agree
with the torch towers to float32 rounding (`tests/models/test_np_runtime.py`).

    tok, bert = load_np_bert("path/to/all-MiniLM-L6-v2")
    t = tok(["a light comedy"], return_tensors="np")
    h = bert(t["input_ids"], t["attention_mask"])          # (B, T, d) float32
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..np_ops import gelu, layer_norm, softmax
from .bert_files import (
    FastTokenizer,
    LiteConfig,
    checkpoint_state,
    lora_pairs,
    tokenizer_max_length,
)


class NumpyBert:
    """`BertModel` without the pooler, in NumPy: ``bert(input_ids, attention_mask)`` ->
    last hidden states (B, T, d) float32."""

    def __init__(self, config: LiteConfig, weights: dict[str, np.ndarray]) -> None:
        self.config = config
        self.w = {k: np.ascontiguousarray(v, np.float32) for k, v in weights.items()}
        self.merged: dict[str, np.ndarray] = {}  # "layers.{i}.{query|key|value}" -> W + BA s

    @classmethod
    def from_checkpoint(cls, config: LiteConfig, state: dict[str, np.ndarray]) -> NumpyBert:
        return cls(config, checkpoint_state(state, config.num_hidden_layers))

    def merge_lora(self, state: dict[str, np.ndarray], scaling: float) -> int:
        """Merge peft LoRA weights (see `bert_files.lora_pairs`); returns how many linear
        layers were adapted."""
        n = 0
        for i, mine, ab in lora_pairs(state):
            if not 0 <= i < self.config.num_hidden_layers:
                raise ValueError(f"LoRA weights for layer {i}: the encoder has no such layer")
            base = self.w[f"layers.{i}.{mine}.weight"]
            delta = np.asarray(ab["B"], np.float32) @ np.asarray(ab["A"], np.float32)
            self.merged[f"layers.{i}.{mine}"] = base + delta * np.float32(scaling)
            n += 1
        return n

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        w = self.merged.get(name)
        w = self.w[f"{name}.weight"] if w is None else w
        return x @ w.T + self.w[f"{name}.bias"]

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray | None = None):
        c, w = self.config, self.w
        ids = np.asarray(input_ids, np.int64)
        b, t = ids.shape
        mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask)
        x = w["word.weight"][ids] + w["token_type.weight"][0] + w["position.weight"][:t][None]
        x = layer_norm(x, w["emb_norm.weight"], w["emb_norm.bias"], c.layer_norm_eps)
        # additive mask (B, 1, 1, T): 0 where attended, float32-min where padded (BertModel)
        bias = (1.0 - mask[:, None, None, :].astype(np.float32)) * np.finfo(np.float32).min
        h = c.num_attention_heads
        d = c.hidden_size
        scale = np.float32(1.0 / np.sqrt(d // h))

        def heads(y):
            return y.reshape(b, t, h, d // h).transpose(0, 2, 1, 3)

        for i in range(c.num_hidden_layers):
            p = f"layers.{i}"
            q = heads(self._linear(x, f"{p}.query"))
            k = heads(self._linear(x, f"{p}.key"))
            v = heads(self._linear(x, f"{p}.value"))
            a = softmax((q @ k.transpose(0, 1, 3, 2)) * scale + bias) @ v
            a = a.transpose(0, 2, 1, 3).reshape(b, t, d)
            x = layer_norm(
                x + self._linear(a, f"{p}.attn_out"),
                w[f"{p}.attn_norm.weight"],
                w[f"{p}.attn_norm.bias"],
                c.layer_norm_eps,
            )
            y = self._linear(gelu(self._linear(x, f"{p}.inter")), f"{p}.out")
            x = layer_norm(
                x + y, w[f"{p}.out_norm.weight"], w[f"{p}.out_norm.bias"], c.layer_norm_eps
            )
        return x.astype(np.float32)


def load_np_bert(path: str | Path) -> tuple[FastTokenizer, NumpyBert]:
    """(tokenizer, NumPy encoder) from a local BERT directory (`bert_files.supports`)."""
    from safetensors.numpy import load_file

    path = Path(path)
    config = LiteConfig.from_dir(path)
    bert = NumpyBert.from_checkpoint(config, load_file(str(path / "model.safetensors")))
    return FastTokenizer(path, tokenizer_max_length(path, config)), bert
