"""The dataset report: built into small real releases, figures checked independently.

The main release is the session's clean pipeline run (`pipeline_runs.clean_run`: plausible
LLM on the loopback test server, real critics, planner, probes, dedup, ledger); a second
run (`priced`: another seed, fewer documents, a priced model) differs from it, for cost
and for `release diff`. Every figure checked here is recomputed independently: DuckDB SQL
over the release's Parquet, plain Python (`report_recount`) for n-grams, lengths, rounds,
scores, skew and the tokens the test server billed, datasketch for MinHash.

Chromium: the render test needs Debian's `chromium` (`tasks.py test` installs it when it
can). It fails when the browser is missing, unless PERSONAFOUNDRY_NO_CHROMIUM=1 is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from llm_server import LlmServer
from pipeline_runs import MODEL, REJECT_RATE, clean_run, cli_env, small_config
from plausible import Plausible
from report_recount import (
    assert_lengths,
    cost,
    distinct_share,
    fact_skew,
    minhash,
    planted_skew,
    server_usage,
    trait_skew,
    words_of,
)

from personafoundry.catalog import connect_release, verify_release
from personafoundry.report import connect_folder, headline, highlights, load_figures
from personafoundry.report_population import (
    SKEW_MIN_FACTS,
    SKEW_MIN_PERSONAS,
    SKEW_SHARE_POINTS,
    SKEW_TRAIT_SD,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars",
)  # fmt: skip
PRICE = {"prompt_per_1k": 0.5, "completion_per_1k": 2.0}  # USD, so the priced run costs > 0
STAGE_TOKENS_TITLE = "Tokens and cost per stage and model"


@dataclass(frozen=True)
class Built:
    """A release built by a pipeline run, with the test server that answered the run."""

    release: Path
    server: LlmServer
    requests: int  # the run's requests are server.requests[:requests]
    price: dict[str, float]  # of MODEL, per 1,000 tokens; empty = free


@pytest.fixture(scope="module")
def clean(prefect_harness, tmp_path_factory) -> Built:
    run = clean_run(tmp_path_factory.mktemp("report"))
    return Built(Path(run.summary["release_path"]), run.server, run.requests, {})


@pytest.fixture(scope="module")
def priced(prefect_harness, tmp_path_factory) -> Iterator[Built]:
    """A second small run that differs: seed 12, one document per persona, MODEL priced."""
    from flows.pipeline import pipeline_flow
    from personafoundry.config import build_config

    out = tmp_path_factory.mktemp("priced") / "outputs"
    extra = {"seed": 12, "documents": {"per_persona": 1}, "llm": {"prices": {MODEL: PRICE}},
             "release": {"version": "1.1.0"}}  # fmt: skip
    server = LlmServer(models=[MODEL], responder=Plausible(reject_rate=REJECT_RATE)).start()
    try:
        summary = pipeline_flow(build_config(small_config(out, server.base_url, extra), "priced"))
        assert not server.errors, server.errors
        yield Built(Path(summary["release_path"]), server, len(server.requests), PRICE)
    finally:
        server.stop()


@pytest.fixture(params=["clean", "priced"])
def built(request: pytest.FixtureRequest) -> Built:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def release(clean: Built) -> Path:
    return clean.release


@pytest.fixture(scope="module")
def figures(release: Path) -> dict[str, Any]:
    return report_json(release)


@pytest.fixture(scope="module")
def con(release: Path) -> duckdb.DuckDBPyConnection:
    return connect_release(release)


def report_json(release: Path) -> dict[str, Any]:
    return json.loads((release / "report.json").read_text())


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_report_files_ship_checksummed_and_the_card_links_every_plot(
    release: Path, figures: dict[str, Any]
) -> None:
    manifest = json.loads((release / "manifest.json").read_text())
    plots = [p["file"] for p in figures["plots"]]
    assert len(plots) >= 8
    assert {"report.html", "report.json", *plots} <= set(manifest["files"])
    assert verify_release(release).ok
    card = (release / "README.md").read_text()
    for plot in figures["plots"]:
        assert f"![{plot['title']}]({plot['file']})" in card
        assert (release / plot["file"]).is_file()


def test_each_plot_is_a_decodable_png_with_its_title(release: Path, figures: dict) -> None:
    from matplotlib.image import imread
    from PIL import Image

    titles = set()
    for plot in figures["plots"]:
        path = release / plot["file"]
        assert path.read_bytes()[:8] == PNG_MAGIC
        with Image.open(path) as img:
            assert img.format == "PNG" and img.info["Title"] == plot["title"]
        pixels = imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.std() > 0.05
        titles.add(plot["title"])
    assert len(titles) == len(figures["plots"])  # no two plots claim the same title


def test_population_shares_match_the_personas_table(release: Path, figures: dict, con) -> None:
    pop = figures["population"]
    calibration = json.loads((release / "validation" / "calibration.json").read_text())
    n = rows(con, "SELECT count(*) FROM personas WHERE source = 'census'")[0][0]
    assert pop["census_personas"] == n > 0
    for attr in ("sex", "race_ethnicity", "state"):
        counts = dict(rows(con, f"SELECT {attr}, count(*) FROM personas WHERE source = 'census' "
                                "GROUP BY ALL"))  # fmt: skip
        for c in pop["attributes"][attr]["categories"]:
            assert c["sampled"] == pytest.approx(counts.get(c["category"], 0) / n, abs=1e-6)
    assert pop["tvd"] == {
        k: pytest.approx(v["tvd"], abs=1e-6)
        for k, v in {**calibration["attributes"], **calibration["two_way"]}.items()
    }
    assert pop["target_source"] == calibration["target_source"]
    assert pop["conditions"] == (calibration["conditions"] or {})
    states = [s["target"] for s in pop["states"]]
    assert states == sorted(states, reverse=True) and len(states) == 51


def _band(label: str) -> tuple[int, int]:
    numbers = [int(x) for x in re.findall(r"\d+", label)]
    if label.startswith("Under"):
        return 0, numbers[0] - 1
    return (numbers[0], 200) if "over" in label else (numbers[0], numbers[1])


def test_age_sex_pyramid_matches_counts_and_its_reference(figures: dict, con) -> None:
    p = figures["population"]["pyramid"]
    people = rows(con, "SELECT age, sex FROM personas WHERE source = 'census'")
    for i, label in enumerate(p["bands"]):
        lo, hi = _band(label)
        for sex, key in (("Male", "male"), ("Female", "female")):
            k = sum(1 for age, s in people if lo <= age <= hi and s == sex)
            assert p[key][i] == pytest.approx(k / len(people), abs=1e-6)
    bands = {c["category"]: c["target"] for c in
             figures["population"]["attributes"]["age_band"]["categories"]}  # fmt: skip
    for i, label in enumerate(p["bands"]):
        assert p["ref_male"][i] + p["ref_female"][i] == pytest.approx(bands[label], abs=1e-5)


def test_generation_figures_match_the_reviews_table(figures: dict, con) -> None:
    gen = figures["generation"]
    for kind, n, accepted in rows(
        con,
        "SELECT item_kind, count(DISTINCT item_id), "
        "count(DISTINCT item_id) FILTER (accepted) FROM reviews GROUP BY ALL",
    ):
        assert (gen["stages"][kind]["items"], gen["stages"][kind]["accepted"]) == (n, accepted)
    for kind, expert, rate in rows(
        con, "SELECT item_kind, expert, sum(passed::INT) / count(*) FROM reviews GROUP BY ALL"
    ):
        assert gen["experts"][f"{kind}/{expert}"]["pass_rate"] == pytest.approx(rate, abs=1e-4)
    failed = dict(
        rows(
            con,
            "SELECT item_kind || '/' || expert, count(*) FROM reviews WHERE NOT passed "
            "GROUP BY ALL",
        )
    )
    assert failed, "the clean run rejects a share of first drafts"
    top = sorted(failed.values(), reverse=True)[: len(gen["rejections"])]
    assert [r["count"] for r in gen["rejections"]] == top
    for r in gen["rejections"]:
        assert failed[f"{r['stage']}/{r['expert']}"] == r["count"] and r["example"]


def test_rounds_of_accepted_items_match_plain_python(figures: dict, con) -> None:
    items: dict[tuple[str, str], tuple[int, bool]] = {}
    for kind, item, round_, accepted in rows(
        con, "SELECT item_kind, item_id, round, accepted FROM reviews"
    ):
        before, done = items.get((kind, item), (0, False))
        items[(kind, item)] = (max(before, round_), done or bool(accepted))
    stages = figures["generation"]["stages"]
    assert set(stages) == {kind for kind, _ in items}
    for kind, stage in stages.items():
        rounds = [r for (k, _), (r, done) in items.items() if k == kind and done]
        assert stage["rounds_accepted"] == {str(r): n for r, n in Counter(rounds).items()}
        assert stage["mean_rounds_accepted"] == pytest.approx(statistics.fmean(rounds), abs=5e-4)
    assert any(r > 1 for r, done in items.values() if done), "revised drafts were accepted"


def test_score_distribution_per_expert_matches_plain_python(figures: dict, con) -> None:
    gen = figures["generation"]
    scores: dict[str, list[float | None]] = {}
    for kind, expert, score in rows(con, "SELECT item_kind, expert, score FROM reviews"):
        scores.setdefault(f"{kind}/{expert}", []).append(score)
    assert set(gen["experts"]) == set(scores)
    for key, values in scores.items():
        given = [v for v in values if v is not None]
        expert = gen["experts"][key]
        assert (expert["reviews"], expert["failed_attempts"]) == (len(values), values.count(None))
        assert expert["mean_score"] == (
            pytest.approx(statistics.fmean(given), abs=5e-4) if given else None
        )
        assert gen["scores"].get(key, {}) == {f"{v:g}": n for v, n in Counter(given).items()}
    assert len({v for s in gen["scores"].values() for v in s}) > 1  # not all one score


def test_token_ledger_rows_match_what_the_test_server_billed(built: Built) -> None:
    gen = report_json(built.release)["generation"]
    billed: dict[str, Counter[str]] = {}
    for (_, role_model), counter in server_usage(built.server, built.requests).items():
        billed[role_model] = billed.get(role_model, Counter()) + counter
    ledger = {f"{r['role']}/{r['model']}": r for r in gen["tokens"]}
    assert set(ledger) == set(billed) == {f"critic/{MODEL}", f"generator/{MODEL}"}
    for key, c in billed.items():
        row = ledger[key]
        assert (row["requests"], row["prompt_tokens"], row["completion_tokens"]) == (
            c["requests"], c["prompt_tokens"], c["completion_tokens"]
        )  # fmt: skip
        assert row["total_tokens"] == c["prompt_tokens"] + c["completion_tokens"]
        assert row["cost_usd"] == pytest.approx(cost(c, built.price), abs=1e-6)
    assert gen["tokens_total"] == sum(r["total_tokens"] for r in ledger.values()) > 0
    total_cost = sum(cost(c, built.price) for c in billed.values())
    assert gen["cost_usd_total"] == pytest.approx(total_cost, abs=1e-6)
    assert (gen["cost_usd_total"] > 1) == bool(built.price)  # the priced run costs dollars


def test_tokens_per_stage_match_what_the_test_server_billed(built: Built) -> None:
    from PIL import Image

    figures = report_json(built.release)
    gen = figures["generation"]
    billed = server_usage(built.server, built.requests)
    by_stage = {(r["stage"], r["role_model"]): r for r in gen["tokens_by_stage"]}
    assert set(by_stage) == set(billed)
    assert {stage for stage, _ in by_stage} == {"personas", "conversations", "documents"}
    for key, c in billed.items():
        row = by_stage[key]
        assert (row["requests"], row["cache_hits"]) == (c["requests"], 0)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            c["prompt_tokens"], c["completion_tokens"]
        )  # fmt: skip
        assert row["cost_usd"] == pytest.approx(cost(c, built.price), abs=1e-6)
    assert gen["tokens_by_stage_note"] is None
    moved = headline(figures)
    for stage in ("personas", "conversations", "documents"):
        tokens = sum(c["prompt_tokens"] + c["completion_tokens"] for (s, _), c in billed.items()
                     if s == stage)  # fmt: skip
        assert moved[f"generation.{stage}.tokens"] == tokens
    plot = {p["file"]: p["title"] for p in figures["plots"]}["report/tokens_by_stage.png"]
    assert plot == STAGE_TOKENS_TITLE
    with Image.open(built.release / "report" / "tokens_by_stage.png") as img:
        assert img.info["Title"] == STAGE_TOKENS_TITLE
    page = (built.release / "report.html").read_text()
    assert f'alt="{STAGE_TOKENS_TITLE}"' in page
    assert any(line.startswith("Cost: ") and "per stage: " in line for line in highlights(figures))


def _texts(con, table: str) -> list[str]:
    sql = {
        "personas": "SELECT coalesce(narrative, '') || chr(10) || coalesce(array_to_string("
        "list_transform(facts, lambda f: coalesce(f.statement, '')), chr(10)), '') FROM personas",
        "conversations": "SELECT array_to_string(list_transform(turns, lambda t: "
        "coalesce(t.text, '')), chr(10)) FROM conversations",
        "documents": "SELECT coalesce(title, '') || chr(10) || body FROM documents",
    }[table]
    return [r[0] for r in rows(con, sql)]


@pytest.mark.parametrize("table", ["personas", "conversations", "documents"])
def test_diversity_matches_plain_python_and_datasketch(table: str, figures: dict, con) -> None:
    d = figures["diversity"]["tables"][table]
    texts = _texts(con, table)
    assert all(t.isascii() for t in texts)  # so a-z0-9 runs are the tokeniser's words
    words = [words_of(t) for t in texts]
    assert d["rows"] == d["sampled_rows"] == len(texts)
    assert d["vocabulary"] == len({w for ws in words for w in ws})
    for n in (1, 2, 3):
        assert d[f"distinct_{n}"] == pytest.approx(distinct_share(words, n), abs=1e-6)
    hashes = [minhash(w) for w in words if w]  # a text without words has no signature
    pairs = list(combinations(range(len(hashes)), 2))
    assert d["pairs"] == len(pairs) and not d["pairs_sampled"]
    mean = np.mean([hashes[i].jaccard(hashes[j]) for i, j in pairs])
    assert d["mean_pairwise_jaccard"] == pytest.approx(mean, abs=1e-6)


@pytest.mark.parametrize("table", ["personas", "conversations", "documents"])
def test_lengths_per_table_and_document_type_match_plain_python(
    table: str, figures: dict, con
) -> None:
    d = figures["diversity"]["tables"][table]
    assert_lengths(d["words"], [len(words_of(t)) for t in _texts(con, table)])
    if table == "documents":
        by_type: dict[str, list[int]] = {}
        for doc_type, text in rows(con, "SELECT doc_type, coalesce(title, '') || chr(10) || "
                                        "body FROM documents"):  # fmt: skip
            by_type.setdefault(doc_type, []).append(len(words_of(text)))
        assert set(d["words_by_doc_type"]) == set(by_type) and len(by_type) > 1
        for doc_type, values in by_type.items():
            assert_lengths(d["words_by_doc_type"][doc_type], values)
    if table == "conversations":
        turns = [n for (n,) in rows(con, "SELECT len(turns) FROM conversations")]
        assert_lengths(figures["diversity"]["conversations"]["turns"], turns)


def test_first_turn_share_matches_sql(figures: dict, con) -> None:
    first = [" ".join(t.lower().split()) for (t,) in rows(con, "SELECT turns[1].text FROM "
                                                            "conversations")]  # fmt: skip
    shared = sum(1 for t in first if first.count(t) > 1) / len(first)
    assert figures["diversity"]["conversations"]["same_first_turn_share"] == pytest.approx(shared)


def test_faithfulness_funnel_matches_documents_and_probes(figures: dict, con) -> None:
    fa = figures["faithfulness"]
    assert fa["probes_by_kind"] == dict(rows(con, "SELECT kind, count(*) FROM probes GROUP BY 1"))
    f = fa["funnel"]
    assert f["facts"] == rows(con, "SELECT sum(len(facts)) FROM personas")[0][0]
    verified = rows(con, "SELECT count(DISTINCT persona_id || '/' || x) FROM documents, "
                         "unnest(revealed_fact_ids) AS u(x)")[0][0]  # fmt: skip
    assert f["verified"] == verified > 0
    assert f["plan_reproduced"] is True, f["plan_note"]
    assert f["facts"] >= f["planned"] >= f["in_accepted_documents"] >= f["verified_of_planned"]
    assert f["verified_of_planned"] == f["verified"]  # only planned facts count as revealed


def test_funnel_counts_the_facts_conversations_use(release: Path, figures: dict, con) -> None:
    used = {i for (ids,) in rows(con, "SELECT used_fact_ids FROM conversations") for i in ids}
    facts = [(p, f["fact_id"]) for p, fs in rows(con, "SELECT persona_id, facts FROM personas")
             for f in fs]  # fmt: skip
    expected = sum(1 for _, fact_id in facts if fact_id in used)
    assert figures["faithfulness"]["funnel"]["used_in_conversations"] == expected > 0
    assert headline(figures)["faithfulness.used_in_conversations"] == expected
    page = (release / "report.html").read_text()
    row = f'<td>facts used in a conversation (used_fact_ids)</td><td class="n">{expected}</td>'
    assert row in page
    assert f"{expected} used in conversations" in highlights(figures)[0]
    titles = {p["file"]: p["title"] for p in figures["plots"]}
    assert "used in conversations" in titles["report/faithfulness.png"]


@pytest.mark.parametrize("source", ["release", "planted"])
def test_skew_shares_means_and_flags_match_plain_python(
    source: str, release: Path, figures: dict, tmp_path: Path
) -> None:
    from personafoundry.report_population import skew_figures

    folder = release if source == "release" else planted_skew(release, tmp_path)
    skew = figures["skew"] if source == "release" else skew_figures(connect_folder(folder))
    personas = pq.read_table(folder / "data" / "personas.parquet").to_pylist()
    overall, shares, fact_flags = fact_skew(personas, SKEW_MIN_FACTS, SKEW_SHARE_POINTS)
    means, trait_flags = trait_skew(personas, SKEW_MIN_PERSONAS, SKEW_TRAIT_SD)
    assert skew["fact_categories_overall"] == pytest.approx(overall, abs=1e-4)
    assert skew["fact_categories"] == {
        name: {g: pytest.approx(row, abs=1e-4) for g, row in table.items()}
        for name, table in shares.items()
    }
    for name, table in means.items():
        for group, row in table.items():
            assert skew["traits"][name][group] == pytest.approx(row, abs=1e-4)
    flagged = {(x["group"], x["value"], x["measure"]) for x in skew["flags"]}
    assert flagged == fact_flags | trait_flags
    if source == "planted":
        assert {("sex", sex, measure) for sex in ("Female", "Male")
                for measure in ("openness", "facts:health")} <= flagged  # fmt: skip
    assert str(SKEW_MIN_PERSONAS) in skew["rule"] and str(SKEW_MIN_FACTS) in skew["rule"]


def test_dedup_figures_match_the_duplicates_table(tmp_path: Path) -> None:
    from personafoundry.release import cut_release
    from personafoundry.synthetic import synthetic_tables

    path = cut_release(synthetic_tables(), root=tmp_path, name="d", version="1.0.0",
                       config={"seed": 0}, run_info={}).path  # fmt: skip
    dedup = json.loads((path / "report.json").read_text())["dedup"]["tables"]
    con = connect_release(path)
    expected = rows(con, 'SELECT "table", count(DISTINCT cluster_id), count(*) FROM duplicates '
                         "GROUP BY 1")  # fmt: skip
    assert expected and {t: (d["clusters"], d["rows_removed"]) for t, d in dedup.items()} == {
        t: (c, n) for t, c, n in expected
    }
    example = dedup["documents"]["examples"][0]
    assert rows(con, f"SELECT count(*) FROM duplicates WHERE item_id = '{example['item_id']}' "
                     f"AND kept_id = '{example['kept_id']}'")[0][0] == 1  # fmt: skip


def test_dedup_similarity_matches_datasketch_on_removed_and_kept_texts(
    release: Path, tmp_path: Path
) -> None:
    from personafoundry.config import DedupConfig
    from personafoundry.dedup import dedup_table
    from personafoundry.report_generation import dedup_figures

    docs = pq.read_table(release / "data" / "documents.parquet")
    copies = [  # near copies, each a different number of words longer
        d | {"document_id": d["document_id"] + "-copy", "body": d["body"] + " again" * (k + 1)}
        for k, d in enumerate(docs.slice(0, 4).to_pylist())
    ]
    table = pa.concat_tables([docs, pa.Table.from_pylist(copies, docs.schema)])
    result = dedup_table(table, DedupConfig(), table_name="documents")
    (tmp_path / "data").mkdir()
    pq.write_table(result.table, tmp_path / "data" / "documents.parquet")
    pq.write_table(result.duplicates, tmp_path / "data" / "duplicates.parquet")
    figure = dedup_figures(connect_folder(tmp_path), {})["tables"]["documents"]

    words = {r["document_id"]: words_of(f"{r['title'] or ''}\n{r['body']}")
             for r in table.to_pylist()}  # fmt: skip
    pairs = {(d["item_id"], d["kept_id"]): d["cluster_id"] for d in result.duplicates.to_pylist()}
    similarity = {p: minhash(words[p[0]]).jaccard(minhash(words[p[1]])) for p in pairs}
    assert len(pairs) >= 4 and len(set(similarity.values())) > 1
    assert figure["rows_removed"] == len(pairs)
    assert figure["clusters"] == len(set(pairs.values()))
    assert figure["mean_similarity"] == pytest.approx(
        statistics.fmean(similarity.values()), abs=5e-5
    )
    for e in figure["examples"]:
        assert e["similarity"] == pytest.approx(similarity[(e["item_id"], e["kept_id"])], abs=5e-5)
    assert [e["similarity"] for e in figure["examples"]] == sorted(
        round(s, 4) for s in similarity.values()
    )[::-1][: len(figure["examples"])]


def test_html_has_no_external_references(release: Path) -> None:
    page = (release / "report.html").read_text()
    assert not re.search(r"(?i)\b(https?|ftp|file):", page)
    assert '="//' not in page and "='//" not in page  # no protocol-relative reference
    for attr in re.findall(r"""(?:src|href|action|poster)\s*=\s*["']?([^"' >]*)""", page):
        assert attr.startswith("data:image/png;base64,"), attr
    assert not re.search(r"<(link|script|iframe|object|embed)\b|@import|url\(", page, re.IGNORECASE)
    assert page.count("data:image/png;base64,") == len(json.loads(
        (release / "report.json").read_text())["plots"])  # fmt: skip


def test_headless_chromium_renders_a_non_blank_page(release: Path, tmp_path: Path) -> None:
    if os.environ.get("PERSONAFOUNDRY_NO_CHROMIUM") == "1":
        pytest.skip("PERSONAFOUNDRY_NO_CHROMIUM=1")
    assert CHROMIUM.is_file(), (
        f"{CHROMIUM} is missing: install Debian's chromium (python3 tasks.py test does when run "
        "as root) or set PERSONAFOUNDRY_NO_CHROMIUM=1 to skip this test."
    )
    from PIL import Image

    profile = tmp_path / "profile"
    profile.mkdir()  # a new, empty profile: no state from any earlier browser run
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
         "--window-size=1200,2000", (release / "report.html").resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and shot.is_file(), done.stderr[-3000:]
    with Image.open(shot) as img:
        gray = np.asarray(img.convert("L"), dtype=float)
    assert gray.shape == (2000, 1200)
    assert gray.std() > 10 and (gray < 200).mean() > 0.02  # text and plots, not a blank page


def test_cli_regenerates_outside_the_release_and_opens_it(release: Path, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    env = {**cli_env(), "BROWSER": f"sh -c 'echo %s > {opened}'"}
    done = subprocess.run(
        [sys.executable, "-c", "from personafoundry.cli import main; main()", "report",
         str(release), "--out", str(tmp_path / "reports"), "--open"],
        env=env, text=True, capture_output=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((release / "manifest.json").read_text())
    out = tmp_path / "reports" / manifest["name"] / manifest["version"]
    assert json.loads((out / "report.json").read_text()) == json.loads(
        (release / "report.json").read_text()
    )
    assert opened.read_text().strip() == (out / "report.html").resolve().as_uri()
    assert verify_release(release).ok


def test_report_cli_finds_name_at_version_under_the_release_root(
    release: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from personafoundry.cli import app
    from personafoundry.errors import PersonaFoundryError

    root, name, version = release.parent.parent, release.parent.name, release.name
    args = ["--root", str(root), "--out", str(tmp_path / "reports")]
    result = CliRunner().invoke(app, ["report", f"{name}@{version}", *args])
    assert result.exit_code == 0, result.output
    out = tmp_path / "reports" / name / version
    assert f"report {(out / 'report.html').resolve()}" in result.output
    assert report_json(out) == report_json(release)
    missing = CliRunner().invoke(app, ["report", f"{name}@9.9.9", *args])
    assert isinstance(missing.exception, PersonaFoundryError)
    assert "9.9.9" in str(missing.exception) and version in str(missing.exception)
    assert not (tmp_path / "reports" / name / "9.9.9").exists()


def test_release_diff_shows_report_figures_also_for_a_release_without_report(
    release: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from personafoundry.cli_release import release_app

    old = tmp_path / release.parent.name / "0.0.1"
    shutil.copytree(release, old)
    (old / "report.json").unlink()  # as if cut before reports existed
    result = CliRunner().invoke(release_app, ["diff", str(old), str(release), "--json"])
    assert result.exit_code == 0, result.output
    moved = json.loads(result.output)["report"]
    after = headline(report_json(release))
    assert moved == {k: [after[k], after[k]] for k in after}  # same tables, same figures
    assert headline(load_figures(old)) == after
    table = CliRunner().invoke(release_app, ["diff", str(old), str(release)])
    assert "diversity.documents.distinct_2" in table.output


def test_release_diff_shows_both_values_of_figures_that_moved(
    release: Path, priced: Built, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from personafoundry.cli_release import release_app

    root = tmp_path / "releases"
    shutil.copytree(release, root / "small" / "1.0.0")
    shutil.copytree(priced.release, root / "small" / "1.1.0")
    before, after = headline(report_json(release)), headline(report_json(priced.release))
    moved = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert {"generation.cost_usd_total", "generation.documents.tokens"} <= moved
    args = ["diff", "small@1.0.0", "small@1.1.0", "--root", str(root)]
    result = CliRunner().invoke(release_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    diff = json.loads(result.output)
    assert {k: diff["report"][k] for k in moved} == {
        k: [before.get(k), after.get(k)] for k in moved
    }
    rows = [
        pq.read_metadata(root / "small" / v / "data" / "documents.parquet").num_rows
        for v in ("1.0.0", "1.1.0")
    ]
    assert [diff["tables"]["documents"][k] for k in ("rows_a", "rows_b")] == rows
    cost_before, cost_after = diff["report"]["generation.cost_usd_total"]
    assert cost_before == 0 and cost_after == report_json(priced.release)["generation"][
        "cost_usd_total"] > 1  # fmt: skip
    table = CliRunner().invoke(release_app, args)
    line = next(x for x in table.output.splitlines() if "generation.cost_usd_total" in x)
    cells = [c.strip() for c in re.split(r"[│|]", line) if c.strip()]
    assert cells == ["generation.cost_usd_total", "0", f"{cost_after:.4g}", f"{cost_after:+.4g}"]


def test_plan_in_chunks_equals_the_plan_of_all_personas_at_once(
    release: Path, figures: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from personafoundry import report_generation

    monkeypatch.setattr(report_generation, "PLAN_CHUNK", 1)  # each persona planned alone
    config = json.loads((release / "manifest.json").read_text())["config"]
    one_by_one = report_generation.faithfulness_figures(connect_folder(release), config)
    assert one_by_one["funnel"] == figures["faithfulness"]["funnel"]


def test_tokens_per_stage_come_from_the_recorded_stage_usage() -> None:
    from personafoundry.report_generation import token_figures

    book = {"generator/m": {"requests": 3, "cache_hits": 1, "prompt_tokens": 10,
                            "completion_tokens": 5, "cost_usd": 0.5}}  # fmt: skip
    with_stages = token_figures({"tokens": [], "stage_usage": {"documents": book}})
    assert with_stages["tokens_by_stage"] == [
        {"stage": "documents", "role_model": "generator/m", "requests": 3, "cache_hits": 1,
         "prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.5}
    ]  # fmt: skip
    assert with_stages["tokens_by_stage_note"] is None
    assert "not recorded" in token_figures({"tokens": []})["tokens_by_stage_note"]
