from __future__ import annotations

import pytest

from instructrec.data.errors import DataError
from instructrec.instructions import TemplateCatalogue
from instructrec.instructions.catalogue import parse_pieces


def test_default_catalogue_covers_the_taxonomy():
    cat = TemplateCatalogue.default()
    assert len(cat) >= 39
    slots = cat.slots()
    tasks = {s[2] for s in slots}
    assert {"T0", "T1", "T2", "T3"} <= tasks
    assert {s[0] for s in slots} == {"P0", "P1", "P2"}
    assert {s[1] for s in slots} == {"I0", "I1", "I2"}
    # several phrasings for the core slots, and held-out ones for zero-shot evaluation
    for slot in [("P1", "I0", "T3"), ("P1", "I2", "T3"), ("P1", "I1", "T3"), ("P1", "I0", "T1")]:
        assert len(cat.templates(slot)) >= 3
        assert cat.templates(slot, held_out=True)
        assert len(cat.templates(slot, held_out=False)) >= 2
    assert len({t.id for t in cat}) == len(cat)


def test_templates_put_candidates_only_in_choices():
    for t in TemplateCatalogue.default():
        text_fields = [v for k, v in parse_pieces(t.text) if k == "field"]
        assert "candidates" not in text_fields
        if t.T in ("T0", "T1", "T3"):
            assert ("field", "candidates") in parse_pieces(t.choices)
        if t.P == "P1":
            assert "history" in t.fields
        if t.P == "P2":
            assert "preference" in t.fields


def test_select_and_get():
    cat = TemplateCatalogue.default()
    seen, held = cat.select("seen"), cat.select("held_out")
    assert seen and held and not {t.id for t in seen} & {t.id for t in held}
    assert len(cat.select("all")) == len(seen) + len(held)
    assert [t.id for t in cat.select(["p1i0t3-a", "p0i2t3-a"])] == ["p1i0t3-a", "p0i2t3-a"]
    assert cat.get("p1i0t3-a").slot == ("P1", "I0", "T3")
    with pytest.raises(DataError, match="unknown template id 'nope'"):
        cat.get("nope")


@pytest.mark.parametrize(
    "body, message",
    [
        ("templates:\n  - id: a\n    slot: [P1, I0, T3]\n", "lacks `text`"),
        (
            "templates:\n  - id: a\n    slot: [P1, I0, T3]\n    text: '{history} {bogus}'\n"
            "    choices: '{candidates}'\n",
            "unknown field",
        ),
        (
            "templates:\n  - id: a\n    slot: [P1, I0, T3]\n    text: 'no history here'\n"
            "    choices: '{candidates}'\n",
            "needs the field {history}",
        ),
        (
            "templates:\n  - id: a\n    slot: [P1, I0, T3]\n    text: '{history}'\n",
            "needs {candidates}",
        ),
        ("templates:\n  - id: a\n    slot: [P0, I0, T2]\n    text: 'hi'\n", "nothing to go on"),
        ("templates: [", "not valid YAML"),
        ("- just a list", "expected a mapping"),
    ],
)
def test_bad_template_files_name_the_file_and_problem(tmp_path, body, message):
    path = tmp_path / "t.yaml"
    path.write_text(body)
    with pytest.raises(DataError, match="t.yaml") as err:
        TemplateCatalogue.from_yaml(path)
    assert message in str(err.value)


def test_duplicate_ids_rejected(tmp_path):
    one = "  - id: a\n    slot: [P0, I2, T2]\n    text: 'find {intention}'\n"
    path = tmp_path / "dup.yaml"
    path.write_text("templates:\n" + one + one)
    with pytest.raises(DataError, match="duplicate template id 'a'"):
        TemplateCatalogue.from_yaml(path)


def test_add_validates_and_renders(ml100k):
    import numpy as np

    from instructrec.instructions import render
    from instructrec.instructions.catalogue import Template

    cat = TemplateCatalogue.from_yaml()  # a private copy: the default stays untouched
    t = cat.add(
        Template(
            "new-1", ("P1", "I0", "T3"), "Lately: {history}. Next {noun}?", "Options: {candidates}."
        )
    )
    assert t.fields == ("history", "noun", "candidates") and cat.get("new-1") is t
    with pytest.raises(DataError, match="duplicate template id"):
        cat.add(t)
    with pytest.raises(DataError, match="needs the field"):
        cat.add(Template("bad", ("P1", "I0", "T3"), "no history", "{candidates}"))
    [out] = render(ml100k, [np.array([11])], None, template_ids=["new-1"], catalogue=cat)
    assert out == "Lately: The Usual Suspects. Next movie?"
    assert "new-1" not in {x.id for x in TemplateCatalogue.default()}
