"""The dataset report: built into a small real release, figures checked against DuckDB.

The release is the session's clean pipeline run (`pipeline_runs.clean_run`: plausible
LLM on the loopback test server, real critics, planner, probes, dedup, ledger). Every
figure checked here is recomputed independently: DuckDB SQL over the release's Parquet,
plain Python for n-grams, datasketch for MinHash.

Chromium: the render test needs Debian's `chromium` (`tasks.py test` installs it when it
can). It fails when the browser is missing, unless PERSONAFOUNDRY_NO_CHROMIUM=1 is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from pipeline_runs import clean_run, cli_env

from personafoundry.catalog import connect_release, verify_release
from personafoundry.minhash import shingle_hash32
from personafoundry.report import headline, load_figures
from personafoundry.report_population import SKEW_MIN_PERSONAS, SKEW_TRAIT_SD

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path("/usr/bin/chromium")
WORD = re.compile(r"[a-z0-9]+")


@pytest.fixture(scope="module")
def release(prefect_harness, tmp_path_factory) -> Path:
    return Path(clean_run(tmp_path_factory.mktemp("report")).summary["release_path"])


@pytest.fixture(scope="module")
def figures(release: Path) -> dict[str, Any]:
    return json.loads((release / "report.json").read_text())


@pytest.fixture(scope="module")
def con(release: Path) -> duckdb.DuckDBPyConnection:
    return connect_release(release)


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


def test_generation_figures_match_the_reviews_table(release: Path, figures: dict, con) -> None:
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
    ledger = json.loads((release / "manifest.json").read_text())["run"]["tokens"]
    assert gen["tokens_total"] == sum(r["prompt_tokens"] + r["completion_tokens"] for r in ledger)
    assert gen["tokens_total"] > 0


def _texts(con, table: str) -> list[str]:
    sql = {
        "personas": "SELECT coalesce(narrative, '') || chr(10) || coalesce(array_to_string("
        "list_transform(facts, lambda f: coalesce(f.statement, '')), chr(10)), '') FROM personas",
        "conversations": "SELECT array_to_string(list_transform(turns, lambda t: "
        "coalesce(t.text, '')), chr(10)) FROM conversations",
        "documents": "SELECT coalesce(title, '') || chr(10) || body FROM documents",
    }[table]
    return [r[0] for r in rows(con, sql)]


def _distinct(words: list[list[str]], n: int) -> float:
    grams = [tuple(w[i : i + n]) for w in words if len(w) >= n for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams)


@pytest.mark.parametrize("table", ["personas", "conversations", "documents"])
def test_diversity_matches_plain_python_and_datasketch(table: str, figures: dict, con) -> None:
    from datasketch import MinHash

    d = figures["diversity"]["tables"][table]
    texts = _texts(con, table)
    assert all(t.isascii() for t in texts)  # so a-z0-9 runs are the tokeniser's words
    words = [WORD.findall(t.lower()) for t in texts]
    assert d["rows"] == d["sampled_rows"] == len(texts)
    assert d["vocabulary"] == len({w for ws in words for w in ws})
    for n in (1, 2, 3):
        assert d[f"distinct_{n}"] == pytest.approx(_distinct(words, n), abs=1e-6)
    assert d["words"]["mean"] == pytest.approx(np.mean([len(w) for w in words]), abs=0.01)
    hashes = []
    for w in (w for w in words if w):  # a text without words has no signature
        m = MinHash(num_perm=128, seed=1, hashfunc=shingle_hash32)
        shingles = [" ".join(w[i : i + 3]) for i in range(len(w) - 2)] or [" ".join(w)]
        m.update_batch(shingles)
        hashes.append(m)
    pairs = list(combinations(range(len(hashes)), 2))
    assert d["pairs"] == len(pairs) and not d["pairs_sampled"]
    mean = np.mean([hashes[i].jaccard(hashes[j]) for i, j in pairs])
    assert d["mean_pairwise_jaccard"] == pytest.approx(mean, abs=1e-6)


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


def test_skew_means_and_flags_follow_the_stated_rule(figures: dict, con) -> None:
    skew = figures["skew"]
    whole = rows(con, "SELECT avg(traits.openness), stddev_pop(traits.openness) FROM personas")[0]
    assert skew["traits_overall"]["openness"] == pytest.approx(whole[0], abs=1e-4)
    expected = set()
    for sex, n, mean in rows(con, "SELECT sex, count(*), avg(traits.openness) FROM personas "
                                  "WHERE traits IS NOT NULL GROUP BY 1"):  # fmt: skip
        assert skew["traits"]["sex"][sex]["openness"] == pytest.approx(mean, abs=1e-4)
        if n >= SKEW_MIN_PERSONAS and abs(mean - whole[0]) >= SKEW_TRAIT_SD * whole[1]:
            expected.add(sex)
    flagged = {x["value"] for x in skew["flags"] if x["group"] == "sex" and x["measure"] ==
               "openness"}  # fmt: skip
    assert flagged == expected
    assert str(SKEW_MIN_PERSONAS) in skew["rule"]


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

    shot = tmp_path / "shot.png"
    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,2000", (release / "report.html").resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
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
    after = headline(json.loads((release / "report.json").read_text()))
    assert moved == {k: [after[k], after[k]] for k in after}  # same tables, same figures
    assert headline(load_figures(old)) == after
    table = CliRunner().invoke(release_app, ["diff", str(old), str(release)])
    assert "diversity.documents.distinct_2" in table.output


def test_plan_in_chunks_equals_the_plan_of_all_personas_at_once(
    release: Path, figures: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from personafoundry import report_generation
    from personafoundry.report import connect_folder

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
