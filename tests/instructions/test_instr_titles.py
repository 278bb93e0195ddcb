from __future__ import annotations

import pandas as pd

from instructrec.data import Dataset
from instructrec.instructions import display_title, domain_noun
from instructrec.instructions.titles import fix_articles


def test_fix_articles_moves_the_article_back():
    got = fix_articles(
        pd.Series(
            [
                "Usual Suspects, The",
                "American Werewolf in London, An",
                "Double vie de Véronique, La (Double Life of Veronique, The)",
                "Seven (Se7en)",
                "Eye of Vichy, The (Oeil de Vichy, L')",
                "Good, The Bad and The Ugly, The",
            ]
        )
    ).tolist()
    assert got == [
        "The Usual Suspects",
        "An American Werewolf in London",
        "La Double vie de Véronique (The Double Life of Veronique)",
        "Seven (Se7en)",
        "The Eye of Vichy (L'Oeil de Vichy)",
        "The Good, The Bad and The Ugly",
    ]


def test_display_titles_of_ml100k_are_readable_and_unique(ml100k):
    titles = display_title(ml100k)
    assert len(titles) == ml100k.n_items
    raw = ml100k.items["title"].tolist()
    assert titles[raw.index("Usual Suspects, The")] == "The Usual Suspects"
    assert len(set(titles)) == len(titles)
    assert not any(t.endswith(", The") for t in titles)
    assert domain_noun(ml100k) == ("movie", "movies")


def test_duplicates_get_the_year_then_a_counter():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "title": ["X", "X", "Y", "Y"],
            "year": pd.array([1990, 2001, 1995, 1995], dtype="Int64"),
        }
    )
    inter = pd.DataFrame({"user_id": ["u"] * 4, "item_id": list("abcd"), "timestamp": range(4)})
    ds = Dataset.from_frames("shop", inter, items)
    assert list(display_title(ds)) == ["X (1990)", "X (2001)", "Y (1995)", "Y (1995) #2"]
    assert domain_noun(ds) == ("item", "items")
