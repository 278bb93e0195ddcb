"""A small recommender of the shipped shape, for tests and benchmarks of the serving path.

SASRec first stage; SASRec + item-kNN + Pop priors; the offline MiniLM + LoRA reranker with
CF and attribute item vectors and the intent-match channel (as configs/quickstart.yaml), on
a synthetic catalogue, its trainable weights perturbed so that nothing sits at its
initialisation. Seconds on a CPU; its scores mean nothing.
"""

from __future__ import annotations


def shipped_like(n_users: int = 40, n_items: int = 60, seed: int = 2):
    """The shipped shape, small: SASRec first stage, SASRec + item-kNN + Pop priors, MiniLM
    + LoRA reranker with CF and attribute vectors and the intent-match channel, weights
    perturbed so nothing is at its initialisation."""
    import torch

    from instructrec.data import make_split
    from instructrec.models.encoder_config import EncoderConfig
    from instructrec.models.encoder_scorer import EncoderScorer
    from instructrec.recommender import Recommender
    from instructrec.rerank.instances import TextSide
    from instructrec.rerank.rerank_features import attribute_matrix, item_texts
    from instructrec.rerank.reranker import InstructionReranker, RerankerConfig
    from instructrec.retrieval.itemknn import ItemKNN
    from instructrec.retrieval.pop import Pop
    from instructrec.retrieval.sasrec import SASRec
    from instructrec.testing.datasets import synthetic_dataset

    torch.manual_seed(0)
    ds = synthetic_dataset(n_users=n_users, n_items=n_items, per_user=10, seed=seed)
    split = make_split(ds, seed=0)
    sas = SASRec(max_epochs=2, hidden=16, inner=32, n_heads=1)
    priors = [sas, ItemKNN(), Pop()]
    rec = Recommender(ds, sas, priors=priors).fit(split)
    cfg = EncoderConfig(lora_r=2, n_prior=len(priors) + 1, max_query_len=24, cf_dim=16)
    scorer = EncoderScorer.build(
        item_texts(ds),
        cfg,
        cf_vecs=sas.item_embeddings(),
        history_len=20,
        attr_vecs=attribute_matrix(ds),
    )
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in scorer.model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    rr = InstructionReranker(
        scorer, TextSide.of(ds), RerankerConfig(intent_match=True), [p.name for p in priors]
    )
    rr.dataset = ds
    rec.reranker = rr
    rec.rerank_depth = 8
    return rec
