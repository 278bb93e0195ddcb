"""Fixtures of the training tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run ~10x faster on one thread when the shared CPU is oversubscribed."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


YESNO_ROWS = [
    (f"Is {title} a comedy?", "yes" if "Comedy" in title else "no")
    for title in [
        "Toy Story (1995) - Animation, Comedy",
        "Heat (1995) - Action, Crime",
        "Casino (1995) - Drama, Crime",
        "Babe (1995) - Comedy",
        "Jumanji (1995) - Adventure",
        "Scream (1996) - Horror",
        "Emma (1996) - Romance, Comedy",
        "Fargo (1996) - Crime, Drama",
        "Clueless (1995) - Comedy, Romance",
        "Alien (1979) - Horror, Sci-Fi",
        "Airplane! (1980) - Comedy",
        "Grease (1978) - Musical, Romance",
    ]
]


@pytest.fixture(scope="session")
def yesno_rows():
    return list(YESNO_ROWS)


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory):
    from instructrec.testing.tiny import tiny_t5

    return tiny_t5(tmp_path_factory.mktemp("tiny_t5"), [q for q, _ in YESNO_ROWS])


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    from instructrec.testing.tiny import tiny_causal

    return tiny_causal(tmp_path_factory.mktemp("tiny_gpt2"), [q for q, _ in YESNO_ROWS])
