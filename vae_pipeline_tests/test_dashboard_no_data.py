"""The Streamlit dashboard before any run: one line saying what to run (no traceback), read
through Streamlit's own headless test runner (no server, no browser)."""

from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "vae_pipeline" / "dashboard.py"


@pytest.mark.timeout(300)
def test_dashboard_without_data_says_run_make_run_first(tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    db = tmp_path / "nothing" / "vae.duckdb"
    monkeypatch.setenv("VAE_PIPELINE_DB", str(db))
    monkeypatch.delenv("VAE_PIPELINE_IO", raising=False)
    app = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not app.exception
    assert [box.value for box in app.info] == [
        f"No data at `{db}` yet: run `make run` (or `vae run`) first, then reload."
    ]
    assert not app.error and not app.warning
    assert not db.exists()  # the reader created nothing
