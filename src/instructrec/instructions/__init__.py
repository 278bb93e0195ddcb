"""Instructions room: the InstructRec template catalogue, derivation of preferences and
intentions, the vectorised builder and the renderer the reranker uses.

    from instructrec.instructions import build, render, TemplateCatalogue
    train = build(dataset, split, stage="train")          # a DataFrame (the InstructionSet)
    texts = render(dataset, histories, intentions, task="T3")
    texts, attrs = paraphrase_intentions(dataset, targets, kind="I1")  # hand-written wording
"""

from .attributes import item_attributes
from .builder import COLUMNS, build
from .catalogue import Template, TemplateCatalogue
from .derive import derive_intentions, intention_excluded, intention_matches, review_phrase
from .export import export, to_alpaca, to_jsonl, to_tsv
from .overlap import vocabulary_overlap
from .paraphrase import ParaphraseSet, load_paraphrases, paraphrase_intentions
from .parse import parse_intention, parse_intentions
from .preferences import derive_preferences
from .render import render
from .titles import display_title, domain_noun, domain_verbs, domain_words

__all__ = [
    "build",
    "render",
    "derive_intentions",
    "intention_matches",
    "intention_excluded",
    "load_paraphrases",
    "paraphrase_intentions",
    "ParaphraseSet",
    "vocabulary_overlap",
    "derive_preferences",
    "display_title",
    "domain_noun",
    "domain_verbs",
    "domain_words",
    "TemplateCatalogue",
    "Template",
    "item_attributes",
    "review_phrase",
    "parse_intention",
    "parse_intentions",
    "export",
    "to_jsonl",
    "to_alpaca",
    "to_tsv",
    "COLUMNS",
]
