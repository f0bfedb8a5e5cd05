"""Tables and figures of pfpyro.report, on small hand-made result frames with known answers."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pfpyro.config import ExperimentConfig
from pfpyro.errors import PfpyroError
from pfpyro.evaluate import POOLED, correlate_by_group, ece_from_bins
from pfpyro.pipeline.grid import write_reports
from pfpyro.report import (
    RESULT_COLUMNS,
    averaging_twins,
    calibration_markdown,
    calibration_table,
    display_name,
    entropy_by_pair,
    figure_entropy,
    figure_language_posteriors,
    figure_per_language,
    figure_reliability,
    figures,
    format_cell,
    order_models,
    pca_project,
    per_pair_markdown,
    per_pair_table,
    pool_reliability,
    table1,
    table1_markdown,
    table2,
    table2_markdown,
    write_calibration,
    write_figures,
    write_tables,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _rows(model: str, seed: int, task: str, metric: str, scores: dict[str, float], part="p0"):
    return [(model, part, seed, task, lang, metric, v) for lang, v in scores.items()]


@pytest.fixture
def results() -> pd.DataFrame:
    """Two seeds of pf-lr and jm on POS (de, gn) and NER (am, de); ns on POS only, one seed."""
    rows = []
    rows += _rows("pf-lr", 0, "pos", "accuracy", {"de": 0.80, "gn": 0.40})
    rows += _rows("pf-lr", 1, "pos", "accuracy", {"de": 0.90, "gn": 0.50})
    rows += _rows("pf-lr", 0, "ner", "span_f1", {"am": 0.50, "de": 0.70})
    rows += _rows("pf-lr", 1, "ner", "span_f1", {"am": 0.60, "de": 0.90})
    rows += _rows("pf-lr", 0, "ner", "token_f1", {"am": 0.55, "de": 0.75})
    rows += _rows("pf-lr", 1, "ner", "token_f1", {"am": 0.65, "de": 0.95})
    rows += _rows("pf-lr", 0, "pos", "entropy", {"de": 0.3, "gn": 1.9})  # not a headline
    rows += _rows("jm", 0, "pos", "accuracy", {"de": 0.70, "gn": 0.30})
    rows += _rows("jm", 1, "pos", "accuracy", {"de": 0.70, "gn": 0.30})
    rows += _rows("jm", 0, "ner", "span_f1", {"am": 0.40, "de": 0.80})
    rows += _rows("jm", 1, "ner", "span_f1", {"am": 0.20, "de": 0.60})
    # ns: one seed, and its gn pair scored in both partitions (0.2 and 0.4 count once, as 0.3).
    rows += _rows("ns", 0, "pos", "accuracy", {"de": 0.50, "gn": 0.20}, part="p0")
    rows += _rows("ns", 0, "pos", "accuracy", {"gn": 0.40}, part="p1")
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


# --- tables -------------------------------------------------------------------------------


def test_table1_means_and_stds_over_seeds(results):
    table = table1(results)
    assert list(table.index) == ["ns", "jm", "pf-lr"]
    # pf-lr POS: seed means 0.60 and 0.70 -> 0.65 ± 0.05 (ddof=0).
    assert table.loc["pf-lr", ("POS acc", "mean")] == pytest.approx(0.65)
    assert table.loc["pf-lr", ("POS acc", "std")] == pytest.approx(0.05)
    assert table.loc["pf-lr", ("POS acc", "seeds")] == 2
    # pf-lr NER span F1: seed means 0.60 and 0.75; token F1: 0.65 and 0.80.
    assert table.loc["pf-lr", ("NER F1", "mean")] == pytest.approx(0.675)
    assert table.loc["pf-lr", ("NER F1", "std")] == pytest.approx(0.075)
    assert table.loc["pf-lr", ("NER token F1", "mean")] == pytest.approx(0.725)
    # jm NER: seed means 0.60 and 0.40; POS identical seeds -> std 0.
    assert table.loc["jm", ("NER F1", "mean")] == pytest.approx(0.50)
    assert table.loc["jm", ("NER F1", "std")] == pytest.approx(0.10)
    assert table.loc["jm", ("POS acc", "std")] == pytest.approx(0.0)
    # ns: partitions pooled (gn = 0.3), one seed -> std 0.
    assert table.loc["ns", ("POS acc", "mean")] == pytest.approx(0.40)
    assert table.loc["ns", ("POS acc", "std")] == 0.0
    # never run: NaN, not a crash; jm has no token F1.
    assert math.isnan(table.loc["ns", ("NER F1", "mean")])
    assert math.isnan(table.loc["jm", ("NER token F1", "mean")])


def test_table1_markdown_formats_percentages_and_blanks(results):
    text = table1_markdown(table1(results))
    lines = text.strip().splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == [
        "Model",
        "POS acc",
        "NER F1",
        "NER token F1",
    ]
    assert len({len(line) for line in lines}) == 1  # columns padded to one width
    assert set(lines[1]) <= set("|:-")
    pf = next(line for line in lines if line.startswith("| PF-lr "))
    assert [c.strip() for c in pf.split("|")[1:-1]] == [
        "PF-lr",
        "65.00 ± 5.00",
        "67.50 ± 7.50",
        "72.50 ± 7.50",
    ]
    ns = next(line for line in lines if line.startswith("| NS "))
    assert [c.strip() for c in ns.split("|")[1:-1]] == ["NS", "40.00 ± 0.00", "", ""]


def test_table1_model_order_and_requested_models(results):
    assert order_models(["pf-lr-bma", "pf-lr", "zz", "ns", "bea", "jm", "ls", "pf-d"]) == [
        "ns",
        "ls",
        "bea",
        "jm",
        "pf-d",
        "pf-lr",
        "pf-lr-bma",
        "zz",
    ]
    table = table1(results, models=["pf-lr", "bea"])
    assert list(table.index) == ["pf-lr", "bea"]
    assert table.loc["bea"].drop(index="seeds", level="stat").isna().all()
    assert display_name("pf-lr-bma") == "PF-lr-bma"
    assert display_name("pf-d") == "PF-d"
    assert format_cell(0.71234, 0.00449) == "71.23 ± 0.45"
    assert format_cell(float("nan"), 0.1) == ""


def test_per_pair_table_shape_values_and_markdown(results):
    table = per_pair_table(results, "ner")
    assert list(table.index) == ["am", "de"]
    assert list(dict.fromkeys(table.columns.get_level_values(0))) == ["jm", "pf-lr"]
    assert table.shape == (2, 2 * 3)
    assert table.loc["de", ("pf-lr", "mean")] == pytest.approx(0.80)
    assert table.loc["de", ("pf-lr", "std")] == pytest.approx(0.10)
    assert table.loc["am", ("jm", "mean")] == pytest.approx(0.30)
    tokens = per_pair_table(results, "ner", "token_f1", models=["jm", "pf-lr"])
    assert tokens[("jm", "mean")].isna().all()
    text = per_pair_markdown(table)
    assert "| am   |" in text and "30.00 ± 10.00" in text and "PF-lr" in text
    pos = per_pair_table(results, "pos")
    assert pos.shape == (2, 3 * 3)
    assert pos.loc["gn", ("ns", "mean")] == pytest.approx(0.30)


def test_table2_columns_follow_subsets(results):
    small = results[results["lang"] != "gn"]
    table = table2({"|L|=11 Sim": results, "|L|=11 Dif": small, "|L|=22 Sim": results.iloc[:0]})
    assert list(dict.fromkeys(table.columns.get_level_values(0))) == [
        "|L|=11 Sim",
        "|L|=11 Dif",
        "|L|=22 Sim",
    ]
    assert table.loc["POS acc", ("|L|=11 Sim", "mean")] == pytest.approx(0.65)
    assert table.loc["POS acc", ("|L|=11 Dif", "mean")] == pytest.approx(0.85)
    assert math.isnan(table.loc["NER F1", ("|L|=22 Sim", "mean")])
    text = table2_markdown(table)
    assert r"\|L\|=11 Sim" in text  # pipes escaped, or the table would break
    assert "85.00 ± 5.00" in text


def test_write_tables_writes_files_atomically(results, tmp_path):
    out = tmp_path / "reports"
    written = write_tables(results, out)
    assert [p.name for p in written] == [
        "table1.md",
        "table1.csv",
        "per_pair_pos.md",
        "per_pair_ner.md",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    csv = pd.read_csv(out / "table1.csv", index_col=0)
    assert csv.loc["pf-lr", "POS acc mean"] == pytest.approx(0.65)
    assert math.isnan(csv.loc["ns", "NER F1 mean"])
    assert "65.00 ± 5.00" in (out / "table1.md").read_text(encoding="utf-8")
    ner = (out / "per_pair_ner.md").read_text(encoding="utf-8")
    assert "span F1" in ner and "token F1" in ner


def test_write_tables_skips_missing_task(results, tmp_path):
    written = write_tables(results[results["task"] == "pos"], tmp_path)
    assert [p.name for p in written] == ["table1.md", "table1.csv", "per_pair_pos.md"]


def _with_valid_bio(results: pd.DataFrame) -> pd.DataFrame:
    """The fixture plus pf-lr's span F1 of the valid-BIO decoding (seed means 0.70, 0.80)."""
    rows = _rows("pf-lr", 0, "ner", "span_f1_valid", {"am": 0.60, "de": 0.80})
    rows += _rows("pf-lr", 1, "ner", "span_f1_valid", {"am": 0.70, "de": 0.90})
    return pd.concat([results, pd.DataFrame(rows, columns=list(RESULT_COLUMNS))])


def test_table1_valid_bio_column_only_when_results_have_it(results, tmp_path):
    assert "NER F1 (valid BIO)" not in table1(results).columns.get_level_values(0)
    table = table1(_with_valid_bio(results))
    labels = list(dict.fromkeys(table.columns.get_level_values(0)))
    assert labels == ["POS acc", "NER F1", "NER F1 (valid BIO)", "NER token F1"]
    assert table.loc["pf-lr", ("NER F1 (valid BIO)", "mean")] == pytest.approx(0.75)
    assert table.loc["pf-lr", ("NER F1 (valid BIO)", "std")] == pytest.approx(0.05)
    assert math.isnan(table.loc["jm", ("NER F1 (valid BIO)", "mean")])
    header = table1_markdown(table).splitlines()[0]
    assert [c.strip() for c in header.split("|")[1:-1]][2:4] == ["NER F1", "NER F1 (valid BIO)"]
    write_tables(_with_valid_bio(results), tmp_path)
    assert "valid-BIO" in (tmp_path / "per_pair_ner.md").read_text(encoding="utf-8")
    both = table2({"old": results, "new": _with_valid_bio(results)})
    assert both.loc["NER F1 (valid BIO)", ("new", "mean")] == pytest.approx(0.75)
    assert math.isnan(both.loc["NER F1 (valid BIO)", ("old", "mean")])


@pytest.fixture
def calibration_results() -> pd.DataFrame:
    """ECE and NLL of pf-lr (plug-in) and pf-lr-bma over two seeds; jm has no BMA twin."""
    rows = []
    for model, ece, nll in (("pf-lr", 0.20, 1.5), ("pf-lr-bma", 0.10, 1.2), ("jm", 0.3, 2.0)):
        for seed, shift in ((0, -0.02), (1, 0.02)):
            for task in ("pos", "ner"):
                low = 0.5 if task == "ner" else 1.0  # NER pairs better calibrated by half
                pairs = {"de": low * ece + shift - 0.01, "gn": low * ece + shift + 0.01}
                rows += _rows(model, seed, task, "ece", pairs)
                rows += _rows(model, seed, task, "nll", {k: v * nll for k, v in pairs.items()})
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def test_calibration_table_compares_averaging_with_plugin(calibration_results, tmp_path):
    assert averaging_twins(["jm", "pf-lr-bma", "pf-d", "pf-lr", "pf-d-bma"]) == [
        "pf-d",
        "pf-d-bma",
        "pf-lr",
        "pf-lr-bma",
    ]
    table = calibration_table(calibration_results)
    assert list(table.index) == ["pf-lr", "pf-lr-bma"]  # jm: no model-averaging twin
    labels = list(dict.fromkeys(table.columns.get_level_values(0)))
    assert labels == ["POS ECE", "POS NLL", "NER ECE", "NER NLL"]
    # pf-lr-bma POS ECE: seed means 0.08 and 0.12 -> 0.10 ± 0.02; NER: 0.03, 0.07 -> 0.05.
    assert table.loc["pf-lr-bma", ("POS ECE", "mean")] == pytest.approx(0.10)
    assert table.loc["pf-lr-bma", ("POS ECE", "std")] == pytest.approx(0.02)
    assert table.loc["pf-lr-bma", ("NER ECE", "mean")] == pytest.approx(0.05)
    assert table.loc["pf-lr", ("POS NLL", "mean")] == pytest.approx(0.30)
    assert table.loc["pf-lr", ("NER NLL", "std")] == pytest.approx(0.03)
    text = calibration_markdown(table)
    row = next(line for line in text.splitlines() if line.startswith("| PF-lr-bma "))
    assert [c.strip() for c in row.split("|")[1:-1]] == [
        "PF-lr-bma",
        "10.00 ± 2.00",  # ECE in %
        "0.120 ± 0.024",  # NLL in nats, not scaled
        "5.00 ± 2.00",
        "0.060 ± 0.024",
    ]
    written = write_calibration(calibration_results, tmp_path)
    assert [p.name for p in written] == ["calibration.md", "calibration.csv"]
    csv = pd.read_csv(tmp_path / "calibration.csv", index_col=0)
    assert csv.loc["pf-lr", "NER ECE mean"] == pytest.approx(0.10)
    only_jm = calibration_results[calibration_results["model"] == "jm"]
    assert write_calibration(only_jm, tmp_path / "none") == []
    assert not (tmp_path / "none").exists()


def test_results_from_csv_path(results, tmp_path):
    path = tmp_path / "results.csv"
    results.to_csv(path, index=False)
    assert table1(path).equals(table1(results))
    with pytest.raises(PfpyroError, match="not found"):
        table1(tmp_path / "absent.csv")


@pytest.mark.parametrize("column", ["seed", "metric", "value"])
def test_missing_column_is_named(results, column):
    with pytest.raises(PfpyroError, match=rf"lacks column\(s\) {column}\b"):
        table1(results.drop(columns=column))


def test_non_numeric_value_is_reported(results, tmp_path):
    bad = results.astype({"value": object})
    bad.loc[3, "value"] = "n/a"
    with pytest.raises(PfpyroError, match="'n/a'"):
        table1(bad)
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(PfpyroError, match=r"bad\.csv:5: expected a number in column value"):
        table1(path)


# --- figures ------------------------------------------------------------------------------


def _assert_png(path: Path, min_bytes: int = 5000) -> None:
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > min_bytes


def test_figure_per_language_writes_png(results, tmp_path):
    path = figure_per_language(results, "pos", tmp_path / "sub" / "fig2_pos.png")
    assert path == tmp_path / "sub" / "fig2_pos.png"
    _assert_png(path)
    assert list((tmp_path / "sub").iterdir()) == [path]  # no temporary file left
    with pytest.raises(PfpyroError, match="no span_f1 scores"):
        figure_per_language(results[results["task"] == "pos"], "ner", tmp_path / "x.png")


@pytest.fixture
def entropy_world() -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[str, str], float]]:
    """pf-lr-bma's sentence entropies and scores for 5 pairs; the expected mean entropies."""
    rng = np.random.default_rng(0)
    pairs = [("pos", "de"), ("pos", "gn"), ("pos", "ta"), ("ner", "am"), ("ner", "de")]
    scores = {("pos", "de"): 0.9, ("pos", "gn"): 0.2, ("pos", "ta"): 0.6, ("ner", "am"): 0.4}
    ent_rows, res_rows, expected = [], [], {}
    for i, (task, lang) in enumerate(pairs):
        values = {}
        for seed in (0, 1):
            v = rng.uniform(0.0, 2.0, size=6)
            values[seed] = v
            ent_rows += [
                ("pf-lr-bma", "p0", seed, task, lang, k, float(x)) for k, x in enumerate(v)
            ]
            if (task, lang) in scores:
                metric = "accuracy" if task == "pos" else "span_f1"
                score = scores[(task, lang)] + (0.02 if seed else -0.02)
                res_rows.append(("pf-lr-bma", "p0", seed, task, lang, metric, score))
        expected[(task, lang)] = float(np.concatenate(list(values.values())).mean())
        ent_rows.append(("pf-lr", "p0", 0, task, lang, 0, 9.0 + i))  # another model: ignored
    res_rows.append(("pf-lr-bma", "p0", 0, "ner", "de", "token_f1", 0.5))  # not ner's headline
    ent = pd.DataFrame(ent_rows, columns=["model", "partition", "seed", "task", "lang",
                                          "sentence", "entropy"])  # fmt: skip
    res = pd.DataFrame(res_rows, columns=list(RESULT_COLUMNS))
    return ent, res, expected


def test_entropy_correlation_equals_scipy(entropy_world, tmp_path):
    ent, res, expected = entropy_world
    pairs, corr = entropy_by_pair(ent, res)
    got = dict(zip(zip(pairs["task"], pairs["lang"], strict=True), pairs["entropy"], strict=True))
    assert got == pytest.approx(expected)
    scored = pairs.dropna(subset=["score"])
    assert len(scored) == 4 and corr.n == 4  # ner-de has no span F1, so no score
    keys = [("pos", "de"), ("pos", "gn"), ("pos", "ta"), ("ner", "am")]
    x = [expected[k] for k in keys]
    y = [0.9, 0.2, 0.6, 0.4]
    assert corr.pearson == pytest.approx(stats.pearsonr(x, y).statistic)
    assert corr.pearson_p == pytest.approx(stats.pearsonr(x, y).pvalue)
    assert corr.spearman == pytest.approx(stats.spearmanr(x, y).statistic)
    assert corr.spearman_p == pytest.approx(stats.spearmanr(x, y).pvalue)

    figure = figure_entropy(ent, res, tmp_path / "fig3.png")
    path, same = figure
    assert path == figure.path == tmp_path / "fig3.png"
    assert same == corr == figure.correlations["pooled"]
    _assert_png(path)
    # Per task: POS over its three scored pairs; NER has one, too few for a correlation.
    assert list(figure.correlations) == ["pooled", "pos", "ner"]
    pos = figure.correlations["pos"]
    assert pos.n == 3
    assert pos.pearson == pytest.approx(stats.pearsonr(x[:3], y[:3]).statistic)
    assert pos.spearman_p == pytest.approx(stats.spearmanr(x[:3], y[:3]).pvalue)
    assert figure.correlations["ner"].n == 1 and math.isnan(figure.correlations["ner"].pearson)


def test_entropy_with_too_few_pairs_is_nan(entropy_world, tmp_path):
    ent, res, _ = entropy_world
    pairs, corr = entropy_by_pair(ent, res, tasks=["ner"])
    assert list(pairs["lang"]) == ["am", "de"]
    assert corr.n == 1 and math.isnan(corr.pearson) and math.isnan(corr.spearman_p)
    _assert_png(figure_entropy(ent, res, tmp_path / "f.png", tasks=["ner"]).path)


def test_entropy_errors(entropy_world, tmp_path):
    ent, res, _ = entropy_world
    with pytest.raises(PfpyroError, match="lacks column"):
        entropy_by_pair(ent.drop(columns="sentence"), res)
    with pytest.raises(PfpyroError, match="no rows for model 'bea'"):
        figure_entropy(ent, res, tmp_path / "f.png", model="bea")
    assert not (tmp_path / "f.png").exists()


def test_pca_project_matches_covariance_eigen():
    rng = np.random.default_rng(1)
    axis = np.zeros(10)
    axis[3] = 1.0
    samples = {
        "yo": rng.normal(0, 0.1, (200, 10)) + 5 * axis,
        "wo": rng.normal(0, 0.1, (200, 10)) - 5 * axis,
        "ta": rng.normal(0, 0.1, (150, 10)),
    }
    proj = pca_project(samples, ["yo", "wo", "ta"], k=4)
    stacked = np.concatenate(list(samples.values()))
    eig = np.sort(np.linalg.eigvalsh(np.cov(stacked.T)))[::-1]
    assert proj.explained == pytest.approx(eig[:4] / eig.sum(), rel=1e-6)
    # the languages split along axis 3, which the first component must find
    assert proj.scores["yo"][:, 0].mean() == pytest.approx(-proj.scores["wo"][:, 0].mean(), 0.05)
    assert abs(proj.scores["yo"][:, 0].mean()) == pytest.approx(5.0, rel=0.02)
    assert proj.scores["ta"].shape == (150, 4)
    with pytest.raises(PfpyroError, match="no samples for xx"):
        pca_project(samples, ["yo", "xx"])
    with pytest.raises(PfpyroError, match=r"expected arrays \[S, h\]"):
        pca_project({"yo": np.zeros((5, 3)), "wo": np.zeros((5, 4))})


def test_figure_language_posteriors(tmp_path):
    rng = np.random.default_rng(2)
    samples = {lang: rng.normal(i, 1.0, (300, 8)) for i, lang in enumerate(["yo", "wo", "ta"])}
    samples["te"] = rng.normal(0, 1.0, (1, 8))  # one sample: no KDE, a histogram instead
    path = figure_language_posteriors(samples, tmp_path / "fig4.png", langs=["yo", "ta", "te"])
    _assert_png(path)


@pytest.fixture
def reliability() -> pd.DataFrame:
    rows = [
        ("pf-lr", "pos", 0, 0.05, 0.00, 10, "de"),
        ("pf-lr", "pos", 14, 0.95, 0.90, 30, "de"),
        ("pf-lr", "pos", 14, 0.99, 0.70, 10, "gn"),  # pooled with the row above
        ("pf-lr", "pos", 7, float("nan"), float("nan"), 0, "gn"),  # an empty bin
        ("jm", "ner", 10, 0.70, 0.80, 5, "am"),
    ]
    return pd.DataFrame(
        rows, columns=["model", "task", "bin", "confidence", "accuracy", "count", "lang"]
    )


def test_pool_reliability_weights_by_count(reliability):
    bins = pool_reliability(reliability)
    top = bins[(bins["model"] == "pf-lr") & (bins["bin"] == 14)].iloc[0]
    assert top["count"] == 40
    assert top["confidence"] == pytest.approx((0.95 * 30 + 0.99 * 10) / 40)
    assert top["accuracy"] == pytest.approx((0.90 * 30 + 0.70 * 10) / 40)
    assert 7 not in set(bins["bin"])
    pf = bins[bins["model"] == "pf-lr"]
    expected = (10 * 0.05 + 30 * 0.05 + 10 * 0.29) / 50
    assert ece_from_bins(pf["count"], pf["confidence"], pf["accuracy"]) == pytest.approx(expected)


def test_figure_reliability(reliability, tmp_path):
    _assert_png(figure_reliability(reliability, tmp_path / "rel.png"))
    with pytest.raises(PfpyroError, match=r"bins in 0\.\.14"):
        figure_reliability(reliability.assign(bin=15), tmp_path / "bad.png")
    with pytest.raises(PfpyroError, match="lacks column"):
        figure_reliability(reliability.drop(columns="count"), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_write_figures_writes_what_it_can(results, entropy_world, reliability, tmp_path):
    ent, res, _ = entropy_world
    both = pd.concat([results, res], ignore_index=True)
    samples = {"yo": np.eye(6), "wo": -np.eye(6)}
    made = write_figures(tmp_path, both, ent, reliability, samples)
    assert [p.name for p in made.paths] == [
        "fig2_pos.png",
        "fig2_ner.png",
        "fig3_entropy.png",
        "fig4_language_posteriors.png",
        "reliability.png",
    ]
    for path in made.paths:
        _assert_png(path)
    assert made.entropy_correlation is not None and made.entropy_correlation.n == 4
    assert made.entropy_correlations is not None
    assert made.entropy_correlations["pos"].n == 3
    only = write_figures(tmp_path / "only", reliability=reliability)
    assert [p.name for p in only.paths] == ["reliability.png"]
    assert only.entropy_correlation is None


def test_figures_never_use_pyplot_or_switch_backend():
    """Figures come from Figure objects on their own canvas: no pyplot, no global backend."""
    tree = ast.parse(Path(figures.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
            imported.add(str(node.module))
    assert not {name for name in imported if "pyplot" in name or "pylab" in name}
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & {"use", "switch_backend", "show"}


def test_correlate_by_group_pools_and_splits():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=12), rng.normal(size=12)
    groups = np.array(["ner"] * 5 + ["pos"] * 5 + ["xx"] * 2)
    out = correlate_by_group(x, y, groups, names=["pos", "ner", "xx", "absent"])
    assert list(out) == [POOLED, "pos", "ner", "xx", "absent"]
    assert out[POOLED].pearson == pytest.approx(stats.pearsonr(x, y).statistic)
    assert out["pos"].spearman == pytest.approx(stats.spearmanr(x[5:10], y[5:10]).statistic)
    assert out["ner"].pearson_p == pytest.approx(stats.pearsonr(x[:5], y[:5]).pvalue)
    assert out["xx"].n == 2 and math.isnan(out["xx"].pearson)  # too few: NaN, not an error
    assert out["absent"].n == 0
    assert list(correlate_by_group(x, y, groups)) == [POOLED, "ner", "pos", "xx"]
    with pytest.raises(ValueError, match="must match"):
        correlate_by_group(x, y, groups[:3])


def test_write_reports_per_task_correlations_and_calibration(
    results, calibration_results, entropy_world, tmp_path
):
    """write_reports on hand-made unit files: JSON per task and pooled, calibration files."""
    ent, res, _ = entropy_world
    units = tmp_path / "units"
    (units / "entropy").mkdir(parents=True)
    frame = pd.concat([results, calibration_results, res], ignore_index=True)
    frame.to_csv(units / "p0_seed0_all.csv", index=False)
    ent.to_csv(units / "entropy" / "p0_seed0_all.csv", index=False)
    written = write_reports(tmp_path, ExperimentConfig(models=["pf-lr", "jm"]))
    names = [p.name for p in written]
    assert {"calibration.md", "calibration.csv", "entropy_correlation.json"} <= set(names)
    saved = json.loads((tmp_path / "entropy_correlation.json").read_text(encoding="utf-8"))
    assert list(saved) == ["pooled", "pos", "ner"]
    assert set(saved["pos"]) == {"pearson", "pearson_p", "spearman", "spearman_p", "n"}
    assert saved["pooled"]["n"] == 4 and saved["pos"]["n"] == 3 and saved["ner"]["n"] == 1
    assert "PF-lr-bma" in (tmp_path / "calibration.md").read_text(encoding="utf-8")
