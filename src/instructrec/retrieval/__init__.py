"""Retrieval room: the `Retriever` contract and the classical first stages / baselines.

from instructrec.retrieval import make_retriever
sasrec = make_retriever("sasrec").fit(split.train, ds.n_users, ds.n_items, valid=split.valid)
items, scores = sasrec.candidates(users, k=20, histories=histories)
"""

from .base import Retriever
from .bpr import BPR, BPRConfig
from .itemknn import ItemKNN, ItemKNNConfig
from .pop import Pop, PopConfig
from .registry import RETRIEVERS, fit_retriever, make_retriever
from .sasrec import SASRec, SASRecConfig
from .titleknn import TitleKNN, TitleKNNConfig

__all__ = [
    "BPR",
    "BPRConfig",
    "Retriever",
    "Pop",
    "PopConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "SASRec",
    "SASRecConfig",
    "TitleKNN",
    "TitleKNNConfig",
    "RETRIEVERS",
    "make_retriever",
    "fit_retriever",
]
