"""Seed persona files: every format, the column mapping, and every bad-input message."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personafoundry.errors import SeedFileError
from personafoundry.ids import make_id
from personafoundry.paths import SEEDS_DIR
from personafoundry.seeds import load_seed_personas
from schemas.personas import SCHEMA


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_shipped_example_files_load() -> None:
    files = sorted((SEEDS_DIR / "personas").iterdir())
    assert {f.suffix for f in files} >= {".txt", ".jsonl", ".csv"}
    sample = load_seed_personas(files, rng_seed=0)
    assert sample.table.num_rows >= 15 and sample.stats["seed_dropped"] == 0
    assert sample.table.schema == SCHEMA.arrow_schema()


def test_txt_one_description_per_line_blank_lines_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.txt", "I have two dogs. I work as a nurse.\n\n  \nI fix bikes.\n")
    sample = load_seed_personas([path], rng_seed=9)
    t = sample.table
    assert t["seed_text"].to_pylist() == ["I have two dogs. I work as a nurse.", "I fix bikes."]
    assert t["source"].to_pylist() == ["seed", "seed"]
    assert t["persona_id"].to_pylist()[1] == make_id("per", 9, "seed", "I fix bikes.")
    assert sample.stats["blank_lines"] == 2
    # unstated demographics are sampled from the census joint, the stated job is kept
    for column in ("age", "sex", "race_ethnicity", "state", "name", "census_vintage"):
        assert t[column].null_count == 0, column
    assert t["occupation"].to_pylist()[0] == "Registered Nurses"
    assert t["census_tables"].to_pylist()[0].startswith("ACSDP1Y2023")


def test_loader_alone_keeps_only_what_the_file_states(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.txt", "I fix bikes.\n")
    t = load_seed_personas([path], rng_seed=9, complete=False).table
    assert t["age"].null_count == 1 and t["name"].null_count == 1


def test_jsonl_keeps_stated_demographics(tmp_path: Path) -> None:
    rows = [
        {"text": "A retired teacher.", "age": 71, "sex": "male", "state": "ohio"},
        {"description": "A nurse.", "household_income": 84000},
    ]
    path = _write(tmp_path, "p.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    t = load_seed_personas([path], rng_seed=0).table.to_pylist()
    assert (t[0]["age"], t[0]["sex"], t[0]["state"]) == (71, "Male", "Ohio")
    assert t[1]["seed_text"] == "A nurse." and t[1]["household_income"] == 84000
    assert t[1]["household_income_bracket"] == "$75,000 to $99,999"
    assert t[1]["sex"] in ("Male", "Female") and t[1]["age"] >= 18  # income: an adult


def test_csv_and_parquet_with_column_mapping(tmp_path: Path) -> None:
    csv_path = _write(tmp_path, "p.csv", 'persona,years\n"A chef, age 30.",30\n')
    pq_path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"persona": ["A pilot."], "years": [45]}), pq_path)
    sample = load_seed_personas(
        [csv_path, pq_path], rng_seed=0, column_map={"text": "persona", "age": "years"}
    )
    assert sample.table["seed_text"].to_pylist() == ["A chef, age 30.", "A pilot."]
    assert sample.table["age"].to_pylist() == [30, 45]


def test_same_text_same_id_across_runs(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.txt", "A beekeeper.\n")
    a = load_seed_personas([path], rng_seed=1).table
    assert a.equals(load_seed_personas([path], rng_seed=1).table)
    assert a["persona_id"] != load_seed_personas([path], rng_seed=2).table["persona_id"]


BAD = [
    (
        "people.csv",
        'text,age\n"A cook.",30\n"A baker.",forty\n',
        'people.csv line 3: column "age" is "forty"; expected an integer 0-120.',
    ),
    ("people.csv", "name,age\nAnn,30\n", 'people.csv line 1: missing column "text"'),
    ("people.csv", 'text,sex\n"A cook.",robot\n', 'people.csv line 2: column "sex" is "robot"'),
    (
        "people.csv",
        'text,state\n"A cook.",Atlantis\n',
        'people.csv line 2: column "state" is "Atlantis"',
    ),
    ("people.csv", 'text,age\n"A cook.",30,extra\n', "people.csv line 2: 2 columns in the header"),
    (
        "people.csv",
        'id,text\na,"A cook."\na,"A baker."\n',
        'people.csv line 3: id "a" already used',
    ),
    (
        "people.csv",
        'text,household_income,household_income_bracket\n"A cook.",5000,"$200,000 or more"\n',
        'people.csv line 2: column "household_income_bracket"',
    ),
    ("p.jsonl", '{"text": "A cook."}\n{"text": "A baker.",\n', "p.jsonl line 2: not valid JSON"),
    (
        "p.jsonl",
        '{"text": "A cook."}\n["A baker."]\n',
        "p.jsonl line 2: a JSON list, not an object",
    ),
    (
        "p.jsonl",
        '{"text": "A cook."}\n{"age": 3}\n',
        'p.jsonl line 2: column "text" (or "description") is missing',
    ),
    (
        "p.jsonl",
        '{"text": "A cook.", "soc_code": "nurse"}\n',
        'p.jsonl line 1: column "soc_code" is "nurse"',
    ),
    ("p.txt", "A cook.\nA baker.\n\na cook.\n", "p.txt line 4: same description as"),
    (
        "people.csv",
        'text,age\n"A cook.",30\n"I am 34 years old.",40\n',
        "people.csv line 3: the text implies age 34 but column age is 40",
    ),
    (
        "people.csv",
        'text,occupation\n"A cook.",Wizard\n',
        'people.csv line 2: column "occupation" is "Wizard", not a BLS OEWS detailed title',
    ),
    (
        "p.txt",
        "A cook.\nI am 12 years old. My husband and I live in Ohio.\n",
        "p.txt line 2: no census-consistent demographics",
    ),
    ("p.txt", "I am 30 years old. I am retired.\n", "p.txt line 1: no census-consistent"),
    ("p.txt", b"A cook.\nA b\xe4ker.\n", "p.txt line 2: not valid UTF-8 (byte 0xe4)"),
    (
        "p.jsonl",
        b'{"text": "A cook."}\n{"text": "A b\xe4ker."}\n',
        "p.jsonl line 2: not valid UTF-8",
    ),
    (
        "people.csv",
        b'text,age\n"A cook.",30\n"A b\xe4ker.",31\n',
        "people.csv line 3: not valid UTF-8",
    ),
    ("people.csv", b"te\xffxt,age\n", "people.csv line 1: header not valid UTF-8 (byte 0xff)"),
    (
        "people.csv",
        'text,name\n"A cook.",Ann Lee\n"A baker.",ann  LEE\n',
        'people.csv line 3: name "ann  LEE" already used at',
    ),
    (
        "p.jsonl",
        '{"description": "A cook."}\n\n{"persona": "A baker."}\n',
        "p.jsonl line 3: column",
    ),
    ("p.txt", "\n\n", "p.txt: no personas found"),
    ("p.docx", "A cook.", "p.docx: unsupported seed file type '.docx'"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD)
def test_bad_input_names_file_line_and_problem(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(SeedFileError) as err:
        load_seed_personas([path], rng_seed=0)
    assert str(err.value).startswith(str(tmp_path / message.split(" ")[0].rstrip(":")))
    assert message in str(err.value)


def test_parquet_bad_row_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"text": ["A cook.", "A baker."], "age": ["30", "old"]}), path)
    with pytest.raises(SeedFileError, match=r'p\.parquet row 2: column "age" is "old"'):
        load_seed_personas([path], rng_seed=0)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SeedFileError, match="file not found"):
        load_seed_personas([tmp_path / "nope.txt"], rng_seed=0)


def test_lenient_mode_skips_and_counts_bad_rows(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "people.csv", 'text,age\n"A cook.",30\n"A baker.",forty\n"A cook.",31\n'
    )
    sample = load_seed_personas([path], rng_seed=0, strict=False)
    assert sample.table["seed_text"].to_pylist() == ["A cook."]
    assert sample.stats["seed_dropped"] == 2
    reasons = sample.dropped["reason"].to_pylist()
    assert 'column "age" is "forty"' in reasons[0] and "same description" in reasons[1]
    assert sample.dropped["location"].to_pylist() == [f"{path} line 3", f"{path} line 4"]


def test_lenient_mode_drops_seeds_no_census_person_fits(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.txt", "A cook.\nI am 12 years old. My wife is a nurse.\n")
    sample = load_seed_personas([path], rng_seed=0, strict=False)
    assert sample.table["seed_text"].to_pylist() == ["A cook."]
    assert sample.dropped["location"].to_pylist() == [f"{path} line 2"]
    assert "no census-consistent demographics" in sample.dropped["reason"][0].as_py()


def test_adding_a_seed_line_does_not_change_the_other_personas(tmp_path: Path) -> None:
    one = load_seed_personas([_write(tmp_path, "a.txt", "A beekeeper.\n")], rng_seed=4).table
    two = load_seed_personas(
        [_write(tmp_path, "b.txt", "I play chess.\nA beekeeper.\n")], rng_seed=4
    ).table
    assert one.to_pylist()[0] == two.to_pylist()[1]


# (file name, content with one undecodable byte on line/record 2 of 3)
BAD_BYTES = [
    ("p.txt", b"A cook.\nA b\xe4ker.\nA pilot.\n"),
    ("p.jsonl", b'{"text": "A cook."}\n{"text": "A b\xe4ker."}\n{"text": "A pilot."}\n'),
    ("people.csv", b'text\n"A cook."\n"A b\xe4ker."\n"A pilot."\n'),
]


@pytest.mark.parametrize(("name", "content"), BAD_BYTES)
def test_lenient_mode_skips_a_line_that_is_not_utf8(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = _write(tmp_path, name, content)
    sample = load_seed_personas([path], rng_seed=0, strict=False)
    assert sample.table["seed_text"].to_pylist() == ["A cook.", "A pilot."]
    assert sample.stats["seed_dropped"] == 1
    (dropped,) = sample.dropped.to_pylist()
    line = 3 if name.endswith(".csv") else 2  # the CSV header is line 1
    assert dropped["location"] == f"{path} line {line}"
    assert dropped["source_file"] == str(path)
    assert dropped["reason"] == "not valid UTF-8 (byte 0xe4); save the file as UTF-8."
    assert "b?ker" in dropped["seed_text"]  # the readable rest, to find the line


def test_utf8_byte_order_mark_and_crlf_line_ends_are_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.txt", b"\xef\xbb\xbfA cook.\r\n\r\nA baker.\r\n")
    sample = load_seed_personas([path], rng_seed=0, complete=False)
    assert sample.table["seed_text"].to_pylist() == ["A cook.", "A baker."]
    assert sample.stats["blank_lines"] == 1


@pytest.mark.parametrize(
    ("name", "content", "blank"),
    [
        ("people.csv", 'text,age\n"A cook.",30\n\n,\n  \n"A baker.",31\n\n', 4),
        ("p.jsonl", '{"text": "A cook."}\n\n   \n{"text": "A baker."}\n\n', 3),
    ],
)
def test_blank_lines_are_skipped_and_counted_in_both_modes(
    tmp_path: Path, name: str, content: str, blank: int
) -> None:
    path = _write(tmp_path, name, content)
    for strict in (True, False):
        sample = load_seed_personas([path], rng_seed=0, strict=strict, complete=False)
        assert sample.table["seed_text"].to_pylist() == ["A cook.", "A baker."]
        assert sample.stats["blank_lines"] == blank and sample.stats["seed_dropped"] == 0
    # line numbers still count the blank lines
    bad = _write(tmp_path, "bad" + Path(name).suffix, content.replace("A baker.", ""))
    with pytest.raises(SeedFileError, match=r"line (6|4): column \"text\""):
        load_seed_personas([bad], rng_seed=0, complete=False)


def test_parquet_without_the_text_column_names_file_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"bio": ["A cook."], "age": [30]}), path)
    for strict in (True, False):  # a file error: every row would be bad
        with pytest.raises(SeedFileError) as err:
            load_seed_personas([path], rng_seed=0, strict=strict)
        assert str(err.value) == (
            f'{path} schema: missing column "text" (or "description"); columns are '
            "['bio', 'age']; map yours with personas.seed_columns."
        )
    sample = load_seed_personas([path], rng_seed=0, column_map={"text": "bio"}, complete=False)
    assert sample.table["seed_text"].to_pylist() == ["A cook."]


def test_jsonl_row_without_the_text_field_is_a_bad_row(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.jsonl", '{"text": "A cook."}\n{"bio": "A baker.", "age": 30}\n')
    with pytest.raises(SeedFileError, match=r'p\.jsonl line 2: column "text" \(or "description"\)'):
        load_seed_personas([path], rng_seed=0)
    sample = load_seed_personas([path], rng_seed=0, strict=False, complete=False)
    assert sample.table["seed_text"].to_pylist() == ["A cook."]
    assert sample.dropped["location"].to_pylist() == [f"{path} line 2"]


def test_duplicate_ids_across_two_files_name_both_places(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.csv", 'id,text\nx1,"A cook."\nx2,"A baker."\n')
    second = _write(tmp_path, "b.jsonl", '{"id": "x3", "text": "A pilot."}\n'
                    '{"id": "x2", "text": "A nurse."}\n')  # fmt: skip
    with pytest.raises(SeedFileError) as err:
        load_seed_personas([first, second], rng_seed=0)
    assert str(err.value) == (
        f'{second} line 2: id "x2" already used at {first} line 3; ids must be unique.'
    )
    sample = load_seed_personas([first, second], rng_seed=0, strict=False, complete=False)
    assert sample.table["seed_text"].to_pylist() == ["A cook.", "A baker.", "A pilot."]
    assert sample.dropped["source_file"].to_pylist() == [str(second)]


def test_seed_given_names_are_kept_and_a_repeat_is_a_bad_row(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.csv", 'text,name\n"A cook.",Ann Lee\n"A baker.",\n')
    second = _write(tmp_path, "b.jsonl", '{"text": "A pilot.", "name": "ANN LEE"}\n'
                    '{"text": "A nurse."}\n')  # fmt: skip
    with pytest.raises(SeedFileError, match=f'line 1: name "ANN LEE" already used at {first}'):
        load_seed_personas([first, second], rng_seed=0)
    sample = load_seed_personas([first, second], rng_seed=0, strict=False)
    t = sample.table.to_pylist()
    assert [r["seed_text"] for r in t] == ["A cook.", "A baker.", "A nurse."]
    assert t[0]["name"] == "Ann Lee" and None not in [r["name"] for r in t]
    assert len({r["name"] for r in t}) == 3
    assert sample.dropped["location"].to_pylist() == [f"{second} line 1"]
    assert "names are unique within a release" in sample.dropped["reason"][0].as_py()


def test_drawn_seed_names_are_unique_and_avoid_given_ones(tmp_path: Path) -> None:
    lines = [f"I am a {40 + i % 5}-year-old Hispanic man. I work as a cook." for i in range(5)]
    text = "\n".join(f"{line} I have {i} cats." for i, line in enumerate(lines * 8))
    sample = load_seed_personas([_write(tmp_path, "p.txt", text + "\n")], rng_seed=5)
    names = sample.table["name"].to_pylist()
    assert len(names) == 40 and len(set(names)) == 40
