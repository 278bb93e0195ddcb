"""Alpaca JSON / JSON lines / TSV instruction data."""

import json

import pytest

from instructrec.data import DataError, InstructionData, read_instruction_data

ALPACA = [
    {
        "instruction": "Give three tips for staying healthy.",
        "input": "",
        "output": "Eat, sleep, move.",
    },
    {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
]


def test_alpaca_json(tmp_path):
    p = tmp_path / "alpaca.json"
    p.write_text(json.dumps(ALPACA))
    data = read_instruction_data(p)
    assert isinstance(data, InstructionData) and len(data) == 2
    assert data.prompts() == [
        "Give three tips for staying healthy.",
        "Translate to French.\n\nGood morning",
    ]
    assert data.outputs == ["Eat, sleep, move.", "Bonjour"]


def test_json_lines_and_missing_input(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text(
        "\n".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(3))
    )
    data = read_instruction_data(p)
    assert data.frame["input"].tolist() == ["", "", ""]
    assert data.prompts(sep=" | ") == ["q0", "q1", "q2"]


def test_tsv_with_and_without_header(tmp_path):
    p = tmp_path / "a.tsv"
    p.write_text(
        "instruction\tanswer\nRecommend a sci-fi film.\tAlien\nName a comedy.\tAirplane!\n"
    )
    data = read_instruction_data(p)
    assert data.frame[["instruction", "output"]].values.tolist() == [
        ["Recommend a sci-fi film.", "Alien"],
        ["Name a comedy.", "Airplane!"],
    ]
    q = tmp_path / "b.tsv"
    q.write_text("Recommend a sci-fi film.\tAlien\n")
    assert len(read_instruction_data(q)) == 1


def test_round_trip(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps(ALPACA))
    data = read_instruction_data(p)
    back = read_instruction_data(data.to_json(tmp_path / "b.json"))
    assert back.frame.equals(data.frame)


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("bad.tsv", "only one field\n", "2 tab-separated fields"),
        ("bad.json", '[{"instruction": "x", "output": "y"}, {"instruction": "z"', "truncated JSON"),
        ("bad.json", '{"instruction": "x"}', "expected a JSON list"),
        ("bad.json", '[{"instruction": "x"}]', "lacks 'output'"),
        ("bad.jsonl", '{"instruction": "x", "output": "y"}\n{"instruction": "x", "out', "line 2"),
        ("bad.json", '[{"instruction": 3, "output": "y"}]', "must be a string"),
        ("empty.json", "", "empty file"),
    ],
)
def test_bad_instruction_files(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(DataError, match=match) as e:
        read_instruction_data(p)
    assert name in str(e.value)
