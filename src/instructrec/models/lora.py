"""LoRA wiring (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models").

A frozen weight W gets a trainable low-rank update (alpha / r) * B A. InstructRec tunes its
backbone this way; so do TALLRec and LlamaRec. `LoraSettings` is the typed config; the target
modules default per architecture (peft's table, then a scan for common attention names).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

# Fallback when peft's table does not know the model type: first names found in the model win.
_COMMON_TARGETS = (
    ["q_proj", "v_proj"],
    ["q", "v"],
    ["query", "value"],
    ["c_attn"],
    ["query_key_value"],
    ["Wqkv"],
)


@dataclass
class LoraSettings:
    """Low-rank adapter settings; ``target_modules=None`` picks them per architecture."""

    r: int = 8  # rank of the update (0: no LoRA, train nothing of the backbone)
    alpha: int = 16  # scaling numerator (update is scaled by alpha / r)
    dropout: float = 0.05  # dropout on the LoRA branch input
    target_modules: list[str] | None = None  # module names to adapt (None: automatic)
    layers: list[int] | None = None  # adapt only these layers (None: all)

    def to_dict(self) -> dict:
        return asdict(self)


def default_targets(model: torch.nn.Module) -> list[str]:
    """LoRA target module names for ``model``'s architecture."""
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as table

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in table:
        return list(table[model_type])
    names = _linear_names(model)
    for candidates in _COMMON_TARGETS:
        if all(c in names for c in candidates):
            return list(candidates)
    raise ValueError(
        f"cannot guess LoRA target modules for model type {model_type!r}; "
        "set LoraSettings.target_modules"
    )


def apply_lora(model: torch.nn.Module, settings: LoraSettings | None) -> torch.nn.Module:
    """Wrap ``model`` with LoRA adapters (peft); base weights are frozen. The one LoRA
    wiring: generic tuning, the encoder reranker's query tower and the joint reader use it.

    ``settings`` None returns the model unchanged (fully trainable); ``r == 0`` freezes it.
    """
    if settings is None:
        return model
    if settings.r <= 0:
        for p in model.parameters():
            p.requires_grad_(False)
        return model
    from peft import LoraConfig, get_peft_model

    targets = list(settings.target_modules or default_targets(model))
    missing = set(targets) - _linear_names(model)
    if missing:
        from instructrec.data.errors import DataError

        model_type = getattr(getattr(model, "config", None), "model_type", None)
        try:
            hint = f"; this architecture's default is {default_targets(model)} (null picks it)"
        except ValueError:
            hint = ""
        raise DataError(
            f"LoRA target modules {sorted(missing)} are not in the {model_type or 'given'} "
            f"backbone{hint}",
            column="lora_targets",
        )
    layers = resolve_layers(model, settings.layers)
    cfg = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        layers_to_transform=layers,
        # peft finds a layer index after a dotted prefix ("encoder.layer.3."); a model whose
        # layer list sits on the model itself ("layers.3.", NomicBert) needs the pattern named
        layers_pattern="layers"
        if layers and isinstance(getattr(model, "layers", None), torch.nn.ModuleList)
        else None,
    )
    return get_peft_model(model, cfg)


def _linear_names(model: torch.nn.Module) -> set[str]:
    """Last name parts of the model's linear (or GPT-2 Conv1D) modules: what LoRA can adapt."""
    return {
        n.rsplit(".", 1)[-1]
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D"
    }


def resolve_layers(model: torch.nn.Module, layers) -> list[int] | None:
    """Layer indices for peft's ``layers_to_transform``: negative ones count from the top
    (-1 = the last layer; ``[-3, -2, -1]`` = the top three of any depth); None/empty = all. A
    `ValueError` names an index the model does not have."""
    if not layers:
        return None
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if n is None:
        if any(i < 0 for i in layers):
            raise ValueError("negative lora_layers need a model config with num_hidden_layers")
        return sorted({int(i) for i in layers})
    out = sorted({int(i) + n if int(i) < 0 else int(i) for i in layers})
    bad = [i for i in out if not 0 <= i < n]
    if bad:
        raise ValueError(f"lora_layers {list(layers)}: the backbone has layers 0..{n - 1}")
    return out


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total
