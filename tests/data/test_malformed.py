"""Malformed data files through the CLI (issue 18): every one is refused with exit code 2 and
one line naming the file and the line or column; inputs stay unchanged and no output is left.

Interaction logs go through `data split` / `data convert`, instruction files through `tune`
(refused before any model is loaded). Configs are in tests/cli/test_malformed_config.py.
"""

from __future__ import annotations

import gzip
import json

import pytest

from instructrec.testing.malformed import Case, check_refused

H = "user_id,item_id,rating,timestamp\n"
OK = "1,10,4,1000000\n1,11,3,1000100\n"  # lines 2-3; the bad row is line 4


def csv(bad: str, header: str = H, name: str = "x.csv") -> dict:
    return {name: header + OK + bad + "\n"}


def split(name: str = "x.csv", *extra: str) -> list[str]:
    return ["data", "split", "--data", f"{{d}}/{name}", *extra, "--out", "{d}/out"]


def c(id, files, where, args=None, data="x.csv") -> Case:
    """A case run as ``args`` (default: ``data split --data {d}/DATA --out {d}/out``)."""
    return Case(id, files, args or split(data), tuple(where))


CSV_CASES = [
    c("csv-empty", {"x.csv": b""}, ["x.csv", "empty file"]),
    c("csv-header-only", {"x.csv": H}, ["x.csv", "no interactions"]),
    c("csv-blank-lines-only", {"x.csv": "\n\n\n"}, ["x.csv", "line 1", "no header"]),
    c("csv-quoted-header", csv("", 'user_id,"item,id",rating,timestamp\n'), ["x.csv", "'item_id'"]),
    c("csv-dup-header", csv("", "user_id,item_id,item_id,timestamp\n"), ["line 1", "'item_id'"]),
    c("csv-dup-header-spaces", csv("", "user_id, item_id,item_id ,timestamp\n"), ["'item_id'"]),
    c("csv-wrong-delimiter", {"x.csv": "user_id;item_id;timestamp\n1;2;3\n"}, ["'user_id'"]),
    c("csv-no-item-column", {"x.csv": "user_id,rating,timestamp\n1,4,100\n"}, ["'item_id'"]),
    c("csv-no-timestamp", {"x.csv": "user_id,item_id,rating\n1,4,5\n"}, ["'timestamp'"]),
    c("csv-rating-text", csv("2,10,five,1000200"), ["x.csv", "line 4", "'rating'"]),
    c("csv-rating-NaN", csv("2,10,NaN,1000200"), ["x.csv", "line 4", "'rating'"]),
    c("csv-rating-nan", csv("2,10,nan,1000200"), ["line 4", "'rating'"]),
    c("csv-rating-inf", csv("2,10,inf,1000200"), ["line 4", "'rating'", "finite"]),
    c("csv-rating-neg-inf", csv("2,10,-inf,1000200"), ["line 4", "'rating'"]),
    c("csv-rating-negative", csv("2,10,-7,1000200"), ["line 4", "'rating'", ">= 0"]),
    c("csv-ts-inf", csv("2,10,4,inf"), ["line 4", "'timestamp'"]),
    c("csv-ts-1e26", csv("2,10,4,1e26"), ["line 4", "'timestamp'", "2100"]),
    c("csv-ts-milliseconds", csv("2,10,4,1600000000000"), ["line 4", "milliseconds"]),
    c("csv-ts-NaN", csv("2,10,4,NaN"), ["line 4", "'timestamp'"]),
    c("csv-ts-negative", csv("2,10,4,-5"), ["line 4", "'timestamp'"]),
    c("csv-ts-text", csv("2,10,4,yesterday"), ["line 4", "'timestamp'"]),
    c("csv-missing-user", csv(",10,4,1000200"), ["line 4", "'user_id'"]),
    c("csv-extra-field", csv("2,10,4,1000200,9"), ["x.csv", "line 4"]),
    c("csv-extra-field-first-row", {"x.csv": H + "1,10,4,1000,7\n2,1,2,3,4\n"}, ["line 2"]),
    c("csv-short-row", csv("2,10"), ["line 4", "'timestamp'"]),
    c("csv-open-quote", csv('2,"10,4,1000200'), ["x.csv", "line 4", "quoted"]),
    c("csv-binary-garbage", {"x.csv": bytes(range(256)) * 8}, ["x.csv", "line 2", "UTF-8"]),
    c("csv-nul-bytes", csv("2,10\x00,4,1000200"), ["x.csv", "line 4", "NUL"]),
    c("csv-latin1", {"x.csv": (H + OK + "2,café,4,1000200\n").encode("latin-1")}, ["line 4"]),
    c("csv-latin1-header", {"x.csv": "usér_id,item_id\n1,2\n".encode("latin-1")}, ["line 1"]),
    c(
        "tsv-dup-header",
        {"x.tsv": "user_id\titem_id\titem_id\ttimestamp\n1\t2\t3\t4\n"},
        ["x.tsv", "line 1", "'item_id'"],
        split("x.tsv"),
    ),
    c(
        "tsv-rating-nan",
        {"x.tsv": H.replace(",", "\t") + "1\t10\tNaN\t1000\n"},
        ["x.tsv", "line 2", "'rating'"],
        split("x.tsv"),
    ),
    c(
        "parquet-garbage",
        {"x.parquet": "user_id,item_id\n1,2\n"},
        ["x.parquet", "Parquet"],
        split("x.parquet"),
    ),
    c("unknown-suffix", {"x.xyz": H + OK}, ["x.xyz", "unknown file type"], split("x.xyz")),
    c("missing-file", {}, ["nothere.csv", "no such file"], split("nothere.csv")),
    c("map-absent-column", csv(""), ["x.csv", "'uid'"], split("x.csv", "--map", "user_id=uid")),
    c(
        "items-dup-id",
        {**csv(""), "items.csv": "item_id,title\n10,A\n11,B\n10,C\n"},
        ["items.csv", "line 4", "'item_id'"],
        split("x.csv", "--items", "{d}/items.csv"),
    ),
    c(
        "items-no-id-column",
        {**csv(""), "items.csv": "title,genres\nA,B\n"},
        ["items.csv", "'item_id'"],
        split("x.csv", "--items", "{d}/items.csv"),
    ),
    c(
        "items-dup-header",
        {**csv(""), "items.csv": "item_id,title,title\n10,A,B\n"},
        ["items.csv", "line 1", "'title'"],
        split("x.csv", "--items", "{d}/items.csv"),
    ),
    c(
        "items-latin1",
        {**csv(""), "items.csv": "item_id,title\n10,Amélie\n".encode("latin-1")},
        ["items.csv", "line 2"],
        split("x.csv", "--items", "{d}/items.csv"),
    ),
]


def atomic(inter: str, item: str | None = None) -> dict:
    files = {"atom/atom.inter": inter}
    if item is not None:
        files["atom/atom.item"] = item
    return files


AH = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
AOK = "1\t10\t4\t1000000\n1\t11\t3\t1000100\n"
ATOMIC_CASES = [
    c("atomic-header-no-type", atomic("user_id\titem_id:token\n1\t2\n"), ["atom.inter", "line 1"]),
    c("atomic-unknown-type", atomic("user_id:tok\titem_id:token\n1\t2\n"), ["line 1", "'tok'"]),
    c("atomic-dup-field", atomic("a:token\ta:token\n1\t2\n"), ["line 1", "'a'"]),
    c(
        "atomic-4-fields-2-header",
        atomic("user_id:token\titem_id:token\n1\t10\t4\t1000\n"),
        ["atom.inter", "line 2", "header"],
    ),
    c("atomic-extra-field-later", atomic(AH + AOK + "2\t10\t4\t1000\t7\n"), ["line 4", "5"]),
    c("atomic-float-text", atomic(AH + AOK + "2\t10\t4\tsoon\n"), ["line 4", "'timestamp'"]),
    c("atomic-rating-inf", atomic(AH + AOK + "2\t10\tinf\t1000200\n"), ["line 4", "'rating'"]),
    c("atomic-ts-huge", atomic(AH + AOK + "2\t10\t4\t1e26\n"), ["line 4", "'timestamp'"]),
    c("atomic-empty", atomic(""), ["atom.inter", "line 1", "empty"]),
    c("atomic-header-only", atomic(AH), ["atom.inter", "no interactions"]),
    c(
        "atomic-latin1",
        {"atom/atom.inter": (AH + AOK + "2\tcafé\t4\t5\n").encode("latin-1")},
        ["atom.inter", "line 4"],
    ),
    c(
        "atomic-item-extra-fields",
        atomic(AH + AOK, "item_id:token\n10\tx\ty\n"),
        ["atom.item", "line 2"],
    ),
    c("atomic-no-inter", {"atom/readme.txt": "hello"}, ["atom", "no atom.inter"]),
]
for case in ATOMIC_CASES:
    case.args = [a.replace("{d}/x.csv", "{d}/atom") for a in case.args]


def review(**kw) -> str:
    obj = {"reviewerID": "u1", "asin": "a1", "overall": 5.0, "unixReviewTime": 1300000000}
    obj.update(kw)
    return json.dumps(obj, ensure_ascii=False)


def reviews(bad: str, name: str = "r.json") -> dict:
    return {name: review() + "\n" + review(asin="a2") + "\n" + bad + "\n"}


DEEP = '{"reviewerID": "u", "x": ' + "[" * 20000 + "]" * 20000 + "}"
AMAZON_CASES = [
    c("amazon-truncated", reviews('{"reviewerID": "u2", "asin"'), ["r.json", "line 3"]),
    c("amazon-deep-nesting", reviews(DEEP), ["r.json", "line 3", "nested"]),
    c("amazon-overall-text", reviews(review(overall="great")), ["line 3", "'overall'"]),
    c("amazon-overall-nan", reviews(review(overall=float("nan"))), ["line 3", "'overall'"]),
    c("amazon-overall-negative", reviews(review(overall=-7)), ["line 3", "'overall'"]),
    c("amazon-time-huge", reviews(review(unixReviewTime=1e26)), ["line 3", "'unixReviewTime'"]),
    c("amazon-time-inf", reviews(review(unixReviewTime=float("inf"))), ["line 3", "2100"]),
    c("amazon-no-reviewer", reviews(review(reviewerID=None)), ["line 3", "'reviewerID'"]),
    c("amazon-reviewer-object", reviews(review(reviewerID={"a": 1})), ["line 3", "'reviewerID'"]),
    c("amazon-array-line", reviews("[1, 2]"), ["line 3", "object"]),
    c(
        "amazon-latin1",
        {"r.json": (review() + "\n" + review(summary="olé") + "\n").encode("latin-1")},
        ["r.json", "line 2"],
    ),
    c(
        "amazon-gz-truncated",
        {"r.json.gz": gzip.compress(((review() + "\n") * 50).encode())[:40]},
        ["r.json.gz", "truncated"],
    ),
    c(
        "amazon-meta-bad-line",
        {**reviews(review(asin="a3")), "m.json": '{"asin": "a1"}\n{"as'},
        ["m.json", "line 2"],
        split("x.csv", "--meta", "{d}/m.json"),
    ),
]
for case in AMAZON_CASES:
    data = next(iter(case.files))
    case.args = [a.replace("{d}/x.csv", "{d}/" + data) for a in case.args]


def tune(name: str, *extra: str) -> list[str]:
    return ["tune", "--data", f"{{d}}/{name}", *extra, "--out", "{d}/out"]


GOOD = [
    {"instruction": "Is 2 even?", "output": "Yes"},
    {"instruction": "Is 3 even?", "output": "No"},
]


def alpaca(*records, name="t.json") -> dict:
    return {name: json.dumps([*GOOD, *records])}


INSTRUCTION_CASES = [
    c(
        "alpaca-null-instruction",
        alpaca({"instruction": None, "output": "Yes"}),
        ["t.json", "record 2", "'instruction'", "null"],
        tune("t.json"),
    ),
    c(
        "alpaca-null-output",
        alpaca({"instruction": "q", "output": None}),
        ["record 2", "'output'"],
        tune("t.json"),
    ),
    c(
        "alpaca-empty-output",
        alpaca({"instruction": "q", "output": ""}),
        ["record 2", "'output'", "empty"],
        tune("t.json"),
    ),
    c(
        "alpaca-blank-instruction",
        alpaca({"instruction": "  ", "output": "No"}),
        ["record 2", "'instruction'"],
        tune("t.json"),
    ),
    c(
        "alpaca-number-output",
        alpaca({"instruction": "q", "output": 5}),
        ["record 2", "'output'", "string"],
        tune("t.json"),
    ),
    c(
        "alpaca-list-instruction",
        alpaca({"instruction": ["q"], "output": "No"}),
        ["record 2", "'instruction'"],
        tune("t.json"),
    ),
    c(
        "alpaca-missing-output",
        alpaca({"instruction": "q"}),
        ["record 2", "'output'"],
        tune("t.json"),
    ),
    c("alpaca-record-not-object", alpaca("just text"), ["t.json", "record 2"], tune("t.json")),
    c(
        "alpaca-top-level-object",
        {"t.json": json.dumps(GOOD[0])},
        ["t.json", "list"],
        tune("t.json"),
    ),
    c("alpaca-empty-list", {"t.json": "[]"}, ["t.json", "empty"], tune("t.json")),
    c(
        "alpaca-deep-nesting",
        {"t.json": "[" * 100000 + "]" * 100000},
        ["t.json", "nested"],
        tune("t.json"),
    ),
    c("alpaca-truncated", {"t.json": json.dumps(GOOD)[:-5]}, ["t.json", "line 1"], tune("t.json")),
    c(
        "jsonl-bad-line",
        {"t.jsonl": json.dumps(GOOD[0]) + "\n{oops\n"},
        ["t.jsonl", "line 2"],
        tune("t.jsonl"),
    ),
    c(
        "jsonl-null-output",
        {"t.jsonl": json.dumps(GOOD[0]) + '\n{"instruction": "q", "output": null}\n'},
        ["t.jsonl", "line 2", "'output'"],
        tune("t.jsonl"),
    ),
    c(
        "tsv-empty-answer",
        {"t.tsv": "Is 2 even?\tYes\nIs 3 even?\t \n"},
        ["t.tsv", "line 2"],
        tune("t.tsv"),
    ),
    c("tsv-three-fields", {"t.tsv": "a\tYes\nb\tNo\textra\n"}, ["t.tsv", "line 2"], tune("t.tsv")),
    c("tsv-header-only", {"t.tsv": "instruction\toutput\n"}, ["t.tsv", "header"], tune("t.tsv")),
    c(
        "tsv-latin1",
        {"t.tsv": "a\tYes\nbé\tNo\n".encode("latin-1")},
        ["t.tsv", "line 2"],
        tune("t.tsv"),
    ),
    c("instructions-empty-file", {"t.json": b""}, ["t.json", "empty"], tune("t.json")),
    c("instructions-unknown-suffix", {"t.csv": "a,b\n"}, ["t.csv"], tune("t.csv")),
    c(
        "tune-bad-valid-data",
        {**alpaca(), "v.json": json.dumps([{"instruction": "q"}])},
        ["v.json", "record 0", "'output'"],
        tune("t.json", "--valid-data", "{d}/v.json"),
    ),
    c(
        "tune-bad-test-data",
        {**alpaca(), "e.json": "[" * 100000},
        ["e.json", "nested"],
        tune("t.json", "--test-data", "{d}/e.json"),
    ),
]

CONVERT_CASES = [
    c(
        "convert-atomic-tab-in-user-id",
        {"x.csv": H + '"a\tb",10,4,1000\n'},
        ["x.csv", "'user_id'", "tab"],
        ["data", "convert", "--data", "{d}/x.csv", "--to", "atomic", "--out", "{d}/out"],
    ),
    c(
        "convert-atomic-newline-in-item-id",
        {"x.csv": H + '1,"a\nb",4,1000\n'},
        ["x.csv", "'item_id'"],
        ["data", "convert", "--data", "{d}/x.csv", "--to", "atomic", "--out", "{d}/out"],
    ),
    c(
        "convert-parquet-dup-header",
        csv("", "user_id,item_id,rating,rating\n"),
        ["x.csv", "line 1", "'rating'"],
        ["data", "convert", "--data", "{d}/x.csv", "--to", "parquet", "--out", "{d}/out"],
    ),
    c(
        "instructions-build-quoted-header",
        csv("", 'user_id,"item,id",rating,timestamp\n'),
        ["x.csv", "'item_id'"],
        ["instructions", "build", "--data", "{d}/x.csv", "--out", "{d}/out"],
    ),
    c(
        "instructions-build-rating-nan",
        csv("2,10,NaN,1000200"),
        ["x.csv", "line 4", "'rating'"],
        ["instructions", "build", "--data", "{d}/x.csv", "--out", "{d}/out"],
    ),
    c(
        "info-bom-dup-header",
        {"x.csv": "\ufeffuser_id,user_id\n1,2\n"},
        ["line 1", "'user_id'"],
        ["data", "info", "--data", "{d}/x.csv"],
    ),
]

CASES = CSV_CASES + ATOMIC_CASES + AMAZON_CASES + INSTRUCTION_CASES + CONVERT_CASES


@pytest.mark.parametrize("case", CASES, ids=[k.id for k in CASES])
def test_malformed_file_is_refused(case, tmp_path):
    check_refused(case, tmp_path)


def test_enough_cases():
    ids = [k.id for k in CASES]
    assert len(set(ids)) == len(ids)
    assert len(CASES) >= 60
