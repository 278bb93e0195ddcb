"""`ScorerContract`: the test suite every `Scorer` passes (implicit's shared-test-mixin idea).

Opt in from a test module with two lines::

    class TestMyScorer(ScorerContract):
        def make_scorer(self):
            return MyScorer(...)

The suite checks: one float32, finite score per candidate (lists of different lengths in one
batch), determinism in eval mode, batching does not change a list's scores, permutation
equivariance where the scorer claims it (``permutation_equivariant = True``), the serving path
(``score_arrays``, where the scorer has one) gives ``score``'s scores, a save/load round
trip gives the same scores, and a few training steps on a planted task raise the target's
share of the softmax. Override ``make_examples`` (candidate ids index `ITEM_TEXTS`) or ``train``
(default: `instructrec.training.loop.fit` over ``scorer.model`` with ``scorer.rank_loss``) when
the scorer needs it. Training targets follow the `LMScorer` convention: ``meta["target"]``.
"""

from __future__ import annotations

import tempfile

import numpy as np

from instructrec.models.base import RerankExample, Scorer

ITEM_TEXTS = [
    "Toy Story (1995) - Animation, Comedy",
    "Heat (1995) - Action, Crime",
    "Casino (1995) - Drama, Crime",
    "Sense and Sensibility (1995) - Romance, Drama",
    "Babe (1995) - Comedy",
    "Jumanji (1995) - Adventure",
    "Scream (1996) - Horror",
    "Fargo (1996) - Crime, Drama",
    "Twister (1996) - Action",
    "Emma (1996) - Romance, Comedy",
    "Alien (1979) - Horror, Sci-Fi",
    "Grease (1978) - Musical, Romance",
]


def contract_examples() -> list[RerankExample]:
    """Lists of 2-5 candidates with ids, priors, histories and a planted target."""
    spec = [
        ("The user loves comedies. Which movie next?", [4, 1, 2, 9], 0),
        ("Recommend a horror film for tonight.", [1, 6, 3], 1),
        ("I want a romantic drama.", [8, 7, 3, 5, 0], 2),
        ("Something with crime, please.", [11, 7], 1),
    ]
    out = []
    for i, (text, ids, target) in enumerate(spec):
        ids = np.asarray(ids, dtype=np.int64)
        out.append(
            RerankExample(
                instruction=text,
                candidate_texts=[ITEM_TEXTS[j] for j in ids],
                candidate_ids=ids,
                prior=np.linspace(1.0, 0.0, len(ids), dtype=np.float32).reshape(-1, 1),
                history_ids=np.asarray([(i + 3) % 12, (i + 5) % 12], dtype=np.int64),
                meta={"target": target},
            )
        )
    return out


def _softmax_target(scores: list[np.ndarray], examples: list[RerankExample]) -> float:
    vals = []
    for s, ex in zip(scores, examples, strict=True):
        z = s.astype(np.float64) - s.max()
        vals.append(z[ex.meta["target"]] - np.log(np.exp(z).sum()))
    return float(np.mean(vals))


class ScorerContract:
    """Mixin of contract tests; subclasses define ``make_scorer``."""

    atol = 1e-4  # tolerance for "same scores" (batching, reload, permutation)
    train_steps = 30  # optimizer steps of the planted-task test
    train_lr = 5e-3  # learning rate of the planted-task test

    def make_scorer(self) -> Scorer:  # pragma: no cover - supplied by the subclass
        raise NotImplementedError

    def make_examples(self) -> list[RerankExample]:
        return contract_examples()

    def train(self, scorer: Scorer, examples: list[RerankExample]) -> None:
        """A few optimizer steps raising the targets' scores (override for other scorers)."""
        from instructrec.training.config import TrainConfig
        from instructrec.training.loop import fit

        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(
                output_dir=tmp,
                lr=self.train_lr,
                max_steps=self.train_steps,
                batch_size=len(examples),
                warmup_ratio=0.0,
                progress=False,
                device="cpu",
                eval_every=10**6,
                patience=0,
            )
            fit(scorer.model, examples, list, scorer.rank_loss, cfg)

    # ---- the contract ----------------------------------------------------------------
    def test_one_finite_float32_score_per_candidate(self):
        scorer, examples = self.make_scorer(), self.make_examples()
        scores = scorer.score(examples)
        assert len(scores) == len(examples)
        for s, ex in zip(scores, examples, strict=True):
            assert isinstance(s, np.ndarray) and s.dtype == np.float32
            assert s.shape == (len(ex.candidate_texts),)
            assert np.all(np.isfinite(s))

    def test_deterministic_in_eval_mode(self):
        scorer, examples = self.make_scorer(), self.make_examples()
        a, b = scorer.score(examples), scorer.score(examples)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, atol=1e-6)

    def test_batching_does_not_change_scores(self):
        scorer, examples = self.make_scorer(), self.make_examples()
        together = scorer.score(examples)
        alone = [scorer.score([ex])[0] for ex in examples]
        for x, y in zip(together, alone, strict=True):
            np.testing.assert_allclose(x, y, atol=self.atol)

    def test_permutation(self):
        """Equivariant scorers: permuting candidates permutes scores. Others: still one
        finite score per candidate after a permutation."""
        scorer, examples = self.make_scorer(), self.make_examples()
        rng = np.random.default_rng(0)
        perms = [rng.permutation(len(ex.candidate_texts)) for ex in examples]
        permuted = [_permute(ex, p) for ex, p in zip(examples, perms, strict=True)]
        base, moved = scorer.score(examples), scorer.score(permuted)
        for s, m, p in zip(base, moved, perms, strict=True):
            assert m.shape == s.shape and np.all(np.isfinite(m))
            if getattr(scorer, "permutation_equivariant", False):
                np.testing.assert_allclose(m, s[p], atol=self.atol)

    def test_the_serving_path_scores_as_score_does(self):
        """A scorer with a serving path (``score_arrays``: the arrays `Recommender`, the
        service and the evaluation harness score through) gives the scores of ``score``."""
        scorer, examples = self.make_scorer(), self.make_examples()
        if not hasattr(scorer, "score_arrays"):
            return  # seq2seq / causal scorers are served through ``score`` itself
        from instructrec.models.encoder_config import pad_histories

        for ex, want in zip(examples, scorer.score(examples), strict=True):
            got = scorer.score_arrays(
                [ex.instruction],
                np.asarray(ex.candidate_ids, np.int64)[None],
                pad_histories([ex.history_ids], scorer.history_len),
                scorer.prior_array([ex]),
            )[0]
            np.testing.assert_allclose(got, want, atol=self.atol)

    def test_save_load_round_trip(self, tmp_path):
        scorer, examples = self.make_scorer(), self.make_examples()
        before = scorer.score(examples)
        scorer.save(tmp_path / "scorer")
        again = type(scorer).load(tmp_path / "scorer").score(examples)
        for x, y in zip(before, again, strict=True):
            np.testing.assert_allclose(x, y, atol=self.atol)

    def test_training_raises_target_score(self):
        scorer, examples = self.make_scorer(), self.make_examples()
        before = _softmax_target(scorer.score(examples), examples)
        self.train(scorer, examples)
        after = _softmax_target(scorer.score(examples), examples)
        assert after > before + 0.05, (before, after)


def _permute(ex: RerankExample, p: np.ndarray) -> RerankExample:
    def take(a):
        return None if a is None else np.asarray(a)[p]

    return RerankExample(
        instruction=ex.instruction,
        candidate_texts=[ex.candidate_texts[i] for i in p],
        candidate_ids=take(ex.candidate_ids),
        prior=take(ex.prior),
        history_ids=ex.history_ids,
        task=ex.task,
        meta={**ex.meta, "target": int(np.argsort(p)[ex.meta["target"]])}
        if "target" in ex.meta
        else dict(ex.meta),
    )
