"""The paper artifact: exports, the summary, the figures and the generated LaTeX are rebuilt
from per-sample logs alone, the same inputs give the same bytes, and main.tex uses only
generated numbers."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.levels import LEVELS
from bench.errors import DataError
from bench.report.export import load_rows, read_export, write_export
from bench.report.figures import FIGURES, draw_figures, frontier
from bench.report.paper import paper_files, setting_text
from bench.report.stats import cluster_bootstrap
from bench.report.summary import (
    Inputs,
    build_summary,
    load_inputs,
    mechanism_records,
    minimum_detectable,
    read_summary,
    sae_record,
    steerability_values,
    summary_json,
)
from bench.store import GenerationRow, ResultsStore

PAPER = Path(__file__).resolve().parent.parent / "paper"
LEVEL_NAMES = [level.value for level in LEVELS]
SETTINGS = {
    "none": [{}],
    "prompting": [{"wording": "described"}],
    "caa": [{"coefficient": 8}, {"coefficient": 32}],
    "query_sae": [{"strength": 0.5}],
}


def _row(
    method: str, hparams: dict, split: str, level: str, scenario: int, seed: int, rng
) -> GenerationRow:
    probs = rng.dirichlet(np.ones(len(LEVEL_NAMES)))
    pred = LEVEL_NAMES[int(np.argmax(probs))]
    new_task = bool(rng.random() < 0.7)
    label = ",".join(f"{k}={v}" for k, v in sorted(hparams.items()))
    role = {"none": "control", "prompting": "prompting"}.get(method, "")
    return GenerationRow(
        cell_hash=f"{split}-{method}-{label}-{level}-{seed}",
        scenario_id=f"sc-{scenario:03d}",
        gen_key=f"g-{split}-{method}-{label}-{level}-{seed}",
        run_key=f"run-{split}",
        setting_key=f"{method}-{label}",
        model="tiny",
        weights_sha256="0" * 64,
        task="question",
        method=method,
        role=role,
        hparams=hparams,
        fingerprint={"name": method},
        level=level,
        seed=seed,
        split=split,
        prompt=[{"role": "user", "content": "q"}],
        text=f"What about {scenario} at {level}?",
        n_tokens=int(rng.integers(5, 20)),
        finished=True,
        scores={
            "pred_level": pred,
            "level_probs": dict(zip(LEVEL_NAMES, probs.round(5).tolist(), strict=True)),
            "on_target": new_task and pred == level,
            "level_distance": abs(LEVEL_NAMES.index(pred) - LEVEL_NAMES.index(level)),
            "sets_task": new_task,
            "new_task": new_task,
            "leaks": bool(rng.random() < 0.05),
            "relevant": bool(rng.random() < 0.9),
            "perplexity": float(rng.uniform(2, 8)),
            "repetition": 0.0,
        },
        scorer="scorer-fp",
        decoding={"greedy": False, "max_new_tokens": 96, "temperature": 0.7, "top_p": 0.9},
        versions={"python": "3.11", "torch": "2", "transformers": "5"},
        git_commit="abc1234",
        config_hash="cfg",
        diagnostics={"attention_kl": float(rng.uniform(0, 1))} if method == "query_sae" else {},
        created_at="2026-01-01T00:00:00Z",
    )


def fixture_rows() -> list[GenerationRow]:
    """A dev sweep (every setting) and a test run (the last setting of each method)."""
    rng = np.random.default_rng(0)
    rows = []
    for split, scenarios in (("dev", 6), ("test", 8)):
        for method, settings in SETTINGS.items():
            for hparams in settings if split == "dev" else settings[-1:]:
                for level in LEVEL_NAMES:
                    for scenario in range(scenarios):
                        rows.append(_row(method, hparams, split, level, scenario, 0, rng))
    return rows


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("exports")
    rows = fixture_rows()
    paths = []
    for split in ("dev", "test"):
        path = folder / f"{split}.jsonl.gz"
        write_export([r for r in rows if r.split == split], path, source=f"{split}.sqlite")
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def summary(exports: list[str]) -> dict:
    return build_summary(load_inputs(exports))


def test_an_export_reads_back_the_rows_it_was_written_from(tmp_path: Path) -> None:
    rows = fixture_rows()[:50]
    header = write_export(rows, tmp_path / "a.jsonl.gz", source="s")
    read_header, read_rows = read_export(tmp_path / "a.jsonl.gz")
    assert read_header == header and header["rows"] == 50
    key = lambda r: (r.cell_hash, r.scenario_id)  # noqa: E731
    assert sorted(read_rows, key=key) == sorted(rows, key=key)


def test_exporting_the_same_rows_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    rows = fixture_rows()[:80]
    write_export(rows, tmp_path / "a.jsonl.gz", source="s")
    write_export(list(reversed(rows)), tmp_path / "b.jsonl.gz", source="s")
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


def test_an_edited_export_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    write_export(fixture_rows()[:10], path, source="s")
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    lines[3] = lines[3].replace('"text": "What', '"text": "Why')
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(DataError, match="do not match its header"):
        read_export(path)
    with pytest.raises(DataError, match=r"jsonl\.gz"):
        write_export(fixture_rows()[:1], tmp_path / "a.json", source="s")


def test_reading_a_store_leaves_it_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with ResultsStore(path) as store:
        store.add(fixture_rows()[:20])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(load_rows(path)) == 20
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    (tmp_path / "plain.sqlite").write_text("not a database")
    with pytest.raises(DataError, match="not a results store"):
        load_rows(tmp_path / "plain.sqlite")


def test_the_summary_marks_the_dev_setting_the_test_split_ran(summary: dict) -> None:
    dev = {
        (c["method"], c["hparams"]): c["chosen"]
        for c in summary["cells"]
        if c["split"] == "dev" and c["level"] == "all"
    }
    assert dev[("caa", "coefficient=32")] and not dev[("caa", "coefficient=8")]
    assert dev[("none", "-")] and dev[("query_sae", "strength=0.5")]
    records = [d for d in summary["differences"] if d["split"] == "test" and d["level"] == "all"]
    assert {(d["method"], d["reference"]) for d in records} >= {
        ("caa", "control"),
        ("caa", "prompting"),
        ("prompting", "control"),
    }
    assert {p["split"] for p in summary["power"]} == {"dev", "test"}


def test_the_summary_is_rebuilt_byte_identical(exports: list[str], summary: dict) -> None:
    assert summary_json(build_summary(load_inputs(exports))) == summary_json(summary)


def test_the_paper_files_come_from_the_summary_file_alone(tmp_path: Path, summary: dict) -> None:
    path = tmp_path / "summary.json"
    path.write_text(summary_json(summary))
    from_file = paper_files(read_summary(path), "summary.json")
    assert from_file == paper_files(summary, "summary.json")
    assert {"values.tex", "table-test.tex", "table-differences.tex", "table-dev.tex"} <= set(
        from_file
    )
    assert r"\csname bench@test/caa/vs-control/success\endcsname" in from_file["values.tex"]


def test_a_setting_names_its_sae_by_folder_and_escapes_for_tex() -> None:
    label = "alpha=2.0,positions=generated,sae=runs/sae/smollm2-135m-L15-query_aligned"
    assert setting_text(label) == (
        r"alpha=2.0, positions=generated, sae=smollm2-135m-L15-query\_aligned"
    )
    assert setting_text("-") == "--"


def test_minimum_detectable_difference_follows_the_normal_approximation() -> None:
    assert minimum_detectable(1.0, 1) == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    assert minimum_detectable(0.5, 100) == pytest.approx(0.5 * 2.801585 / 10, abs=1e-6)


def test_steerability_pairs_each_text_with_its_control() -> None:
    rows = fixture_rows()
    values = steerability_values(rows)
    assert set(values) == {"prompting", "caa", "query_sae"}
    assert all(len(v) == 8 for v in values.values())  # one mean per test scenario
    assert all(-1 <= x <= 1 for v in values.values() for x in v)


def test_a_committed_evaluation_under_the_old_names_is_a_saelens_record() -> None:
    path = Path(__file__).parents[1] / "results" / "sae" / "eval-aligned.json"
    evaluation = json.loads(path.read_text(encoding="utf-8"))
    record = sae_record(path, evaluation)
    assert record["explained_variance"] == evaluation.get(
        "fve", evaluation.get("explained_variance")
    )
    assert 0 < record["frac_alive"] <= 1 and record["ce_loss_score"] > 0.9
    assert record["aligned"] and 0 <= record["binding_accuracy"] <= 1


def test_a_training_curve_is_read_by_tokens_only_for_stage_one(tmp_path: Path) -> None:
    results = Path(__file__).parents[1] / "results" / "sae"
    stage1 = sae_record(results / "eval-gemma3-270m-L9.json", _json(results, "L9"))
    assert stage1["curve_tokens"] and len(stage1["curve_tokens"]) == len(
        stage1["curve_explained_variance"]
    )
    # the aligned SAE's log beside it counts stage-2 steps: no point on the tokens axis
    aligned = sae_record(results / "eval-gemma3-270m-L9-aligned.json", _json(results, "L9-aligned"))
    assert aligned["aligned"] and "curve_tokens" not in aligned
    # a stage-1 log without tokens is bad input, one line
    (tmp_path / "gemma3-270m-L9-query-topk").mkdir()
    (tmp_path / "gemma3-270m-L9-query-topk" / "training_log.json").write_text(
        json.dumps({"curve": [{"step": 1, "explained_variance": 0.5}]})
    )
    with pytest.raises(DataError, match="not a training log"):
        sae_record(tmp_path / "eval.json", _json(results, "L9"))


def _json(results: Path, suffix: str) -> dict:
    return json.loads((results / f"eval-gemma3-270m-{suffix}.json").read_text(encoding="utf-8"))


def test_the_mechanism_record_reads_the_attention_shift_against_the_move() -> None:
    rows = fixture_rows()
    for r in rows:  # the SAE texts' shift rises with their target probability
        if r.method == "query_sae" and r.split == "test":
            r.diagnostics["attention_kl"] = float(r.scores["level_probs"][r.level])
    (record,) = mechanism_records(rows)
    assert record["method"] == "query_sae" and record["n"] == 48 and record["scenarios"] == 8
    assert record["spearman"] > 0.3
    assert record["spearman_low"] <= record["spearman"] <= record["spearman_high"]
    for r in rows:
        if "attention_kl" in r.diagnostics:
            r.diagnostics["attention_kl"] = -float(r.scores["level_probs"][r.level])
    assert mechanism_records(rows)[0]["spearman"] < -0.3


def test_a_two_column_statistic_resamples_whole_scenarios() -> None:
    pairs = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, math.nan]])
    estimate = cluster_bootstrap(pairs, ["a", "a", "b", "c"], statistic=lambda p: p[:, 1].max())
    assert (estimate.value, estimate.n, estimate.clusters) == (2.0, 3, 2)  # NaN row left out
    assert estimate.low == 1.0 and estimate.high == 2.0
    with pytest.raises(ValueError, match="statistic"):
        cluster_bootstrap(pairs, ["a", "a", "b", "c"])


def test_every_figure_is_drawn_from_a_fixture_export(tmp_path: Path, summary: dict) -> None:
    rows = fixture_rows()
    sae = [
        {
            "file": "eval.json",
            "layer": 15,
            "site": "query",
            "architecture": "topk",
            "d_sae": 64,
            "aligned": False,
            "explained_variance": 0.9,
            "l0": 8.0,
            "frac_alive": 1.0,
            "ce_loss_score": 0.95,
            "kl_div_with_sae": 0.01,
            "kl_div_score": 0.9,
            "heldout_tokens": 100,
            "curve_tokens": [10, 20],
            "curve_explained_variance": [0.5, 0.8],
        }
    ]
    labels = {"n": 10, "accuracy": 0.5, "macro_f1": 0.5, "f1_per_label": {"Remember": 0.5}}
    full = summary | {"sae": sae, "validation": {"heldout": labels}}
    drawn = draw_figures(full, rows, tmp_path)
    assert drawn.skipped == {}
    assert {p.name for p in drawn.files} == {
        f"{name}.{ext}" for name in FIGURES for ext in ("png", "pdf")
    }
    again = draw_figures(full, rows, tmp_path / "again")
    assert [p.read_bytes() for p in drawn.files if p.suffix == ".png"] == [
        p.read_bytes() for p in again.files if p.suffix == ".png"
    ]


def test_figures_without_their_inputs_say_why(tmp_path: Path, summary: dict) -> None:
    dev_only = [r for r in fixture_rows() if r.split == "dev"]
    dev_summary = build_summary(Inputs(rows=dev_only, sources=[]))
    drawn = draw_figures(dev_summary, dev_only, tmp_path)
    assert "test-split" in drawn.skipped and "sae-quality" in drawn.skipped
    assert "frontier" not in drawn.skipped


def test_the_frontier_shows_each_model_in_its_own_row_against_its_own_control() -> None:
    dev = [r for r in fixture_rows() if r.split == "dev"]
    second = [
        dataclasses.replace(r, model="tiny-2", run_key="run-dev-2", cell_hash=f"2-{r.cell_hash}")
        for r in dev
        if r.method in ("none", "caa")
    ]
    summary = build_summary(Inputs(rows=dev + second, sources=[]))
    figure = frontier(summary, dev + second)
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    assert len(figure.axes) == 4
    assert titles[0].startswith("tiny:") and titles[2].startswith("tiny-2:")
    by_model = {
        model: {c["method"] for c in summary["cells"] if c["model"] == model}
        for model in ("tiny", "tiny-2")
    }
    assert by_model == {"tiny": set(SETTINGS), "tiny-2": {"none", "caa"}}
    second_row = [line for ax in figure.axes[2:] for line in ax.lines]
    assert len(second_row) == 2 * 3  # each panel: one point per setting (control, 2 caa)


def test_a_second_models_dev_rows_add_a_models_table_and_leave_the_main_values() -> None:
    rows = fixture_rows()
    second = [
        dataclasses.replace(r, model="tiny-2", run_key="run-dev-2", cell_hash=f"2-{r.cell_hash}")
        for r in rows
        if r.split == "dev"
    ]
    alone = paper_files(build_summary(Inputs(rows=rows, sources=[])), "s.json")
    both = paper_files(build_summary(Inputs(rows=rows + second, sources=[])), "s.json")
    for name in ("table-test.tex", "table-differences.tex", "table-dev.tex"):
        assert both[name] == alone[name]
    kept = [  # what the second model changes: the models' values and the provenance
        line
        for line in alone["values.tex"].splitlines()
        if "bench@models/" not in line and "bench@provenance/" not in line
    ]
    assert set(kept) <= set(both["values.tex"].splitlines())
    table = both["table-models.tex"].splitlines()
    assert sum(line.startswith("tiny &") for line in table) == len(SETTINGS)
    assert sum(line.startswith("tiny-2 &") for line in table) == len(SETTINGS)
    # tiny ran its test split: its rows are the chosen (last) settings; tiny-2's are its best
    # on dev by success
    assert r"bench@models/tiny/caa/setting\endcsname{coefficient=32}" in both["values.tex"]
    summary = build_summary(Inputs(rows=rows + second, sources=[]))
    caa = [c for c in summary["cells"] if c["model"] == "tiny-2" and c["method"] == "caa"
           and c["level"] == "all"]  # fmt: skip
    best = max(caa, key=lambda c: (c["success"], c["bloom_exact"]))
    expected = setting_text(best["hparams"])
    assert rf"bench@models/tiny-2/caa/setting\endcsname{{{expected}}}" in both["values.tex"]


def test_cli_export_summary_paper_and_bad_input(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    with ResultsStore(store) as results:
        results.add(fixture_rows())
    runner = CliRunner()
    export = tmp_path / "all.jsonl.gz"
    result = runner.invoke(main, ["export", str(store), "--out", str(export)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "summary.json"
    result = runner.invoke(main, ["summary", str(export), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["provenance"]["inputs"][0]["rows"] == len(fixture_rows())
    result = runner.invoke(main, ["paper", "--summary", str(out), "--out", str(tmp_path / "gen")])
    assert result.exit_code == 0 and (tmp_path / "gen" / "values.tex").is_file()
    for args in (
        ["export", str(tmp_path / "missing.sqlite"), "--out", str(tmp_path / "x.jsonl.gz")],
        ["summary", str(store), "--out", str(tmp_path / "s.json")],
        ["paper", "--summary", str(export), "--out", str(tmp_path / "g")],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, args
        assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert not (tmp_path / "s.json").exists() and not (tmp_path / "g").exists()


def test_cli_export_keeps_only_the_chosen_methods(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    with ResultsStore(store) as results:
        results.add(fixture_rows())
    methods = sorted({row.method for row in fixture_rows()})
    chosen = methods[-1]
    export = tmp_path / "one.jsonl.gz"
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(store), "--method", chosen, "--out", str(export)])
    assert result.exit_code == 0, result.output
    with gzip.open(export, "rt") as lines:
        kept = {json.loads(line)["method"] for line in list(lines)[1:]}
    assert kept == {chosen}
    result = runner.invoke(
        main, ["export", str(store), "--method", "no_such", "--out", str(tmp_path / "x.jsonl.gz")]
    )
    assert result.exit_code == 2 and "no rows for that selection" in result.output
    assert not (tmp_path / "x.jsonl.gz").exists()


# --- main.tex -------------------------------------------------------------------------------

MACRO_ARGUMENT = re.compile(
    r"\\(?:val|ci|cite[pt]?|ref|label|input|includegraphics|bibliography|bibliographystyle|"
    r"begin|end)(?:\[[^\]]*\])?\{[^}]*\}"
)


def _body() -> str:
    text = (PAPER / "main.tex").read_text(encoding="utf-8")
    text = re.sub(r"(?<!\\)%.*", "", text)  # comments
    return text.split(r"\begin{document}", 1)[1].split(r"\end{document}", 1)[0]


def test_every_input_and_graphic_of_main_tex_resolves() -> None:
    text = (PAPER / "main.tex").read_text(encoding="utf-8")
    inputs = re.findall(r"\\input\{([^}]*)\}", text)
    graphics = re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]*)\}", text)
    assert inputs and graphics
    missing = [name for name in inputs + graphics if not (PAPER / name).is_file()]
    assert not missing, f"main.tex names files that do not exist: {missing}"


def test_every_value_main_tex_uses_is_generated() -> None:
    values = (PAPER / "generated" / "values.tex").read_text(encoding="utf-8")
    defined = set(re.findall(r"\\csname bench@([^\\]*)\\endcsname\{", values))
    used = set(re.findall(r"\\(?:val|ci)\{([^}]*)\}", _body()))
    used |= {f"{key}-ci" for key in re.findall(r"\\ci\{([^}]*)\}", _body())}
    assert used and not used - defined, f"undefined values: {sorted(used - defined)}"


def test_the_prose_of_main_tex_holds_no_typed_number() -> None:
    prose = MACRO_ARGUMENT.sub("", _body())
    digits = [line.strip() for line in prose.splitlines() if re.search(r"\d", line)]
    assert not digits, f"digits outside macros: {digits}"
