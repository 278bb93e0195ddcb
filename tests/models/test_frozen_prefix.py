"""The frozen-bottom cache gives the tower's own output, and trains only what LoRA adapts."""

import pytest
import torch

from instructrec.models.encoder_config import EncoderConfig
from instructrec.models.encoder_scorer import EncoderScorer
from instructrec.models.frozen_prefix import FrozenPrefix
from instructrec.testing.scorer import ITEM_TEXTS

TEXTS = ["a comedy please", "something sad and slow from the seventies", "a comedy please", "x"]


@pytest.fixture(scope="module")
def scorer():
    return EncoderScorer.build(ITEM_TEXTS, EncoderConfig(n_prior=0, lora_r=4))  # top 3 adapted


def _full(model, batch):
    return model.tower(**batch).last_hidden_state


def test_cached_bottom_equals_the_towers_forward_in_eval_mode(scorer):
    model = scorer.model
    prefix = model._prefix
    assert isinstance(prefix, FrozenPrefix) and prefix.depth == 3
    batch = dict(scorer.tokenize(TEXTS))
    batch.pop("token_type_ids", None)
    model.eval()
    prefix.clear()
    with torch.no_grad():
        want = _full(model, batch)
        got = prefix.forward(batch["input_ids"], batch["attention_mask"])
        again = prefix.forward(batch["input_ids"], batch["attention_mask"])  # from the cache
    m = batch["attention_mask"].bool()
    torch.testing.assert_close(got[m], want[m], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(again[m], got[m])
    assert len(prefix.cache) == 3  # distinct texts


def test_training_uses_the_cache_and_gradients_reach_lora(scorer):
    model = scorer.model
    model._prefix.clear()
    batch = scorer.tokenize(TEXTS)
    model.train()
    q = model.encode_query(batch["input_ids"], batch["attention_mask"])
    assert len(model._prefix.cache) == 3
    q.sum().backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    model.zero_grad()
    model.drop_prefix_cache()
    assert model._prefix.cache == {}
    model.eval()


def test_a_changed_bottom_weight_empties_the_cache(scorer):
    model = scorer.model
    batch = scorer.tokenize(TEXTS[:1])
    with torch.no_grad():
        model._prefix.forward(batch["input_ids"], batch["attention_mask"])
        assert model._prefix.cache
        emb = model._prefix.bert.embeddings.word_embeddings.weight
        emb.add_(0.0)  # an in-place write bumps the version counter
        model._prefix.forward(batch["input_ids"], batch["attention_mask"])
    assert len(model._prefix.cache) == 1


def test_no_prefix_without_a_frozen_bottom():
    all_layers = EncoderScorer.build(
        ITEM_TEXTS, EncoderConfig(n_prior=0, lora_r=4, lora_layers=None)
    )
    assert all_layers.model._prefix is None
    frozen = EncoderScorer.build(ITEM_TEXTS, EncoderConfig(n_prior=0, lora_r=0))
    assert frozen.model._prefix is None


def _check_tower(tower, ids, mask):
    """A prefix over the bottom 2 layers gives the tower's own output and trains LoRA."""
    prefix = FrozenPrefix.for_tower(tower, 2)
    assert prefix is not None and prefix.depth == 2
    with torch.no_grad():  # LoRA's B starts at 0: make the adapter count
        for n, p in tower.named_parameters():
            if "lora_B" in n:
                p.normal_()
    tower.eval()
    with torch.no_grad():
        want = tower(input_ids=ids, attention_mask=mask).last_hidden_state
        got = prefix.forward(ids, mask)
    m = mask.bool()
    torch.testing.assert_close(got[m], want[m], atol=1e-5, rtol=1e-4)
    assert len(prefix.cache) == 2
    tower.train()
    prefix.forward(ids, mask).sum().backward()
    grads = [p.grad for n, p in tower.named_parameters() if "lora_A" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def _tiny_config(config_cls):
    """A 3-layer, 32-wide config of ``config_cls`` (the towers below differ only in class)."""
    return config_cls(
        vocab_size=50, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=40,
    )  # fmt: skip


def test_mpnet_bottom_cache_equals_its_forward_and_trains_lora():
    """MPNet's layers also take the encoder's relative position bias (all-mpnet-base-v2)."""
    from transformers import MPNetConfig, MPNetModel

    from instructrec.models.lora import LoraSettings, apply_lora

    torch.manual_seed(0)
    config = _tiny_config(MPNetConfig)
    tower = apply_lora(MPNetModel(config), LoraSettings(r=4, target_modules=["q", "v"], layers=[2]))
    ids = torch.tensor([[0, 5, 6, 7, 2], [0, 9, 2, 1, 1], [0, 5, 6, 7, 2]])  # 1 = MPNet's pad
    _check_tower(tower, ids, (ids != 1).long())


def test_nomic_bert_bottom_cache_equals_its_forward_and_trains_lora():
    """NomicBert's layers sit on the model and take its rotary embeddings (nomic-embed)."""
    from transformers import NomicBertConfig, NomicBertModel

    from instructrec.models.lora import LoraSettings, apply_lora

    torch.manual_seed(0)
    config = _tiny_config(NomicBertConfig)
    model = NomicBertModel(config, add_pooling_layer=False)
    tower = apply_lora(model, LoraSettings(r=4, target_modules=["q_proj", "v_proj"], layers=[2]))
    adapted = {n.split(".self_attn")[0] for n, _ in tower.named_parameters() if "lora_A" in n}
    assert adapted == {"base_model.model.layers.2"}  # the layer named, found at the top level
    ids = torch.tensor([[1, 5, 6, 7, 2], [1, 9, 2, 0, 0], [1, 5, 6, 7, 2]])  # 0 = pad
    _check_tower(tower, ids, (ids != 0).long())
