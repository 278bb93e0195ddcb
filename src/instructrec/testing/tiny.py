"""Tiny language models for tests and benchmarks: no hub, no download, seconds on a CPU.

`tiny_tokenizer` trains a byte-level BPE (``tokenizers`` library) on a few hundred strings and
wraps it as a `PreTrainedTokenizerFast` (pad/eos/unk/bos specials). `tiny_t5` and
`tiny_causal` build randomly initialised models from configs and save them with their
tokenizer into a directory, which then loads like any checkpoint (`load_backbone(dir)`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

DEFAULT_TEXTS = [
    "Recommend a movie for me. Answer: yes",
    "Would the user like this item? Answer: no",
    "The user liked Toy Story, Heat and Casino.",
    "Candidates: A. Movie 1 B. Movie 2 C. Movie 3",
    "Given the history, which of the following items will the user enjoy next?",
    "Yes No yes no A B C D E F G H I J K L M N O P Q R S T U V W X Y Z",
    "Comedy Drama Horror Action Romance Thriller Animation Documentary Western Sci-Fi",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
]


def tiny_tokenizer(texts: Iterable[str] = (), vocab_size: int = 400):
    """A byte-level BPE fast tokenizer trained on ``texts`` (plus a small built-in corpus)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = list(texts) + DEFAULT_TEXTS * 4
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<s>",
    )


def tiny_t5(
    directory: str | Path,
    texts: Iterable[str] = (),
    d_model: int = 32,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """Save a tiny random T5 (Flan-T5 architecture) + tokenizer to ``directory``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tok = tiny_tokenizer(texts)
    cfg = T5Config(
        vocab_size=len(tok),
        d_model=d_model,
        d_ff=2 * d_model,
        d_kv=d_model // 2,
        num_layers=layers,
        num_decoder_layers=layers,
        num_heads=2,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(cfg)
    return _save(directory, model, tok)


def tiny_causal(
    directory: str | Path,
    texts: Iterable[str] = (),
    arch: str = "gpt2",
    d_model: int = 32,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """Save a tiny random causal LM (``arch`` "gpt2" or "llama") + tokenizer to ``directory``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer(texts)
    ids = dict(
        vocab_size=len(tok),
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )
    torch.manual_seed(seed)
    if arch == "gpt2":
        model = GPT2LMHeadModel(
            GPT2Config(
                n_embd=d_model,
                n_layer=layers,
                n_head=2,
                n_positions=1024,
                resid_pdrop=0.0,
                embd_pdrop=0.0,
                attn_pdrop=0.0,
                **ids,
            )
        )
    elif arch == "llama":
        model = LlamaForCausalLM(
            LlamaConfig(
                hidden_size=d_model,
                intermediate_size=2 * d_model,
                num_hidden_layers=layers,
                num_attention_heads=2,
                num_key_value_heads=2,
                max_position_embeddings=1024,
                **ids,
            )
        )
    else:
        raise ValueError(f"arch must be 'gpt2' or 'llama', got {arch!r}")
    return _save(directory, model, tok)


def _save(directory: str | Path, model, tok) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory
