"""The ``vae train`` command through typer's CliRunner: JSON on stdout, tables, bad options."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vae_pipeline.cli import app

runner = CliRunner()
TINY = ["--n-names", "20", "--n-days", "300", "--epochs", "30"]


def test_json_output_is_one_parsable_object():
    result = runner.invoke(app, ["train", "--json", *TINY])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)  # stdout holds the JSON object and nothing else
    assert {
        "minvar",
        "factor_recovery",
        "latent_market_corr",
        "latent_observable_corr",
        "anomaly",
        "train",
    } <= set(d)
    assert d["train"]["epochs"] == 30
    assert "vae" in d["minvar"] and "cvae" not in d["minvar"]


def test_tables_without_json():
    result = runner.invoke(app, ["train", *TINY, "--no-progress"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    for title in (
        "Min-variance horse race",
        "True-factor recovery",
        "Strongest |corr|",
        "Anomaly test",
    ):
        assert title in text
    assert "factor_analysis" in text and "gap to oracle" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--beta", "-1"], "beta"),
        (["--epochs", "0"], "epochs"),
        (["--latent", "0"], "latent"),
        (["--kind", "quadratic"], "kind"),
        (["--latent", "20", "--n-names", "20"], "smaller than the number of names"),
        (["--decoder", "cnn"], "decoder"),
    ],
)
def test_bad_options_exit_non_zero_with_a_message(args, needle):
    result = runner.invoke(app, ["train", "--json", *args])
    assert result.exit_code == 2
    assert result.stdout == ""  # nothing on stdout, so a pipe into jq sees no half-result
    assert "Error" in result.stderr and needle in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_help_lists_train():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "train" in result.stdout
