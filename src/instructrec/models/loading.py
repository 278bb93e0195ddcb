"""Load a backbone (tokenizer + model) from a local directory or a hub id, kind auto-detected.

Kinds: "encoder" (BERT/MiniLM: `AutoModel`), "seq2seq" (T5/Flan-T5: `AutoModelForSeq2SeqLM`),
"causal" (GPT-2, Llama, Qwen...: `AutoModelForCausalLM`). "auto" reads the model's config: an
encoder-decoder is seq2seq, an architecture named ``*ForCausalLM``/``*LMHeadModel`` is causal,
anything else is an encoder. Without network (``HF_HUB_OFFLINE=1``) a hub id that is not in the
local cache fails with a `DataError` that says to pass a local directory instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from instructrec.data.errors import DataError
from instructrec.models.lora import LoraSettings, apply_lora

KINDS = ("auto", "encoder", "seq2seq", "causal")
DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


@dataclass
class Backbone:
    """A loaded language model and its tokenizer."""

    tokenizer: Any  # a transformers tokenizer
    model: torch.nn.Module  # the HF model, wrapped by peft when LoRA is on
    kind: str  # "encoder" | "seq2seq" | "causal"
    name_or_path: str | None = None  # where it came from (None: built in memory)
    lora: LoraSettings | None = None  # adapter settings applied (None: no adapters)
    extra: dict = field(default_factory=dict)


def detect_kind(config) -> str:
    """ "seq2seq" | "causal" | "encoder" from a transformers config."""
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "causal"
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if (
        not archs
        and config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and config.model_type not in ("bert", "roberta", "xlm-roberta", "electra")
    ):
        return "causal"
    return "encoder"


def _resolve_error(name: str, err: Exception) -> DataError:
    local = Path(name).expanduser()
    if local.exists():
        return DataError(f"cannot load a model from this directory ({err})", source=name)
    return DataError(
        "model not found: not a local directory, and the hub id could not be loaded "
        "(no network or not in the local cache; HF_HUB_OFFLINE is "
        f"{'on' if _offline() else 'off'}). Pass a local directory holding config.json, the "
        f"weights and the tokenizer, e.g. one saved with save_pretrained(). ({type(err).__name__})",
        source=name,
    )


def _offline() -> bool:
    import os

    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def _hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the model hub's host accepts a TCP connection within ``timeout`` seconds."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def check_hub_id(name: str) -> None:
    """Fail fast for a hub id that cannot be had: not a local path, not in the local cache,
    and ``HF_HUB_OFFLINE`` set or no network (instead of the hub client's retries)."""
    if Path(name).expanduser().exists():
        return
    try:
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return
    except Exception:  # not a valid repo id: transformers' own error says so
        return
    if _offline():
        raise _resolve_error(name, ConnectionError("HF_HUB_OFFLINE is set"))
    if not _hub_reachable():
        raise _resolve_error(name, ConnectionError("no network"))


def load_config(name_or_path: str):
    from transformers import AutoConfig

    check_hub_id(name_or_path)
    try:
        return AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as e:
        raise _resolve_error(name_or_path, e) from None


def load_backbone(
    name_or_path: str,
    kind: str = "auto",
    lora: LoraSettings | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | None = None,
    tokenizer: str | None = None,
) -> Backbone:
    """Tokenizer + model from a local directory or hub id, with optional LoRA adapters.

    ``dtype``: None (the checkpoint's own / fp32), "float32", "bfloat16", "float16" or a
    torch dtype. ``device``: None (CPU; `fit` moves it), "cpu", "cuda", ...
    ``tokenizer``: where the tokenizer lives when not next to the model.
    """
    if kind not in KINDS:
        raise DataError(f"kind must be one of {KINDS}, got {kind!r}", column="kind")
    name_or_path = str(name_or_path)
    config = load_config(name_or_path)
    if kind == "auto":
        kind = detect_kind(config)
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    cls = {"encoder": AutoModel, "seq2seq": AutoModelForSeq2SeqLM, "causal": AutoModelForCausalLM}[
        kind
    ]
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise DataError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}", column="dtype")
        dtype = DTYPES[dtype]
    kwargs = {"dtype": dtype} if dtype is not None else {}
    try:
        tok = AutoTokenizer.from_pretrained(str(tokenizer or name_or_path))
        model = cls.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as e:
        raise _resolve_error(name_or_path, e) from None
    prepare_tokenizer(tok, model, kind)
    model = apply_lora(model, lora)
    if device is not None:
        model.to(device)
    return Backbone(tok, model, kind, name_or_path, lora)


def prepare_tokenizer(tokenizer, model, kind: str) -> None:
    """Give causal tokenizers a pad token (their EOS) so batches can be padded."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer.add_special_tokens({"pad_token": "<pad>"})
            model.resize_token_embeddings(len(tokenizer))
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
