"""README.md's first screen tells a newcomer what the two commands do and what they then have."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_first_screen_names_the_commands_and_every_front_end():
    first = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:60])
    for needed in ("make run", "make test", "make ui", "vae dashboard", "dashboard.html"):
        assert f"`{needed}`" in first or needed in first, needed
    assert "`vae dashboard`" in first and "`dashboard.html`" in first
    assert "stlite" in first and "Pyodide" in first  # why the offline page is JavaScript
    assert re.search(r"make run` then took\s+\d+ s", first)  # a measured wall time
    assert "--verbose" in first and "#real-data" in first
    assert (ROOT / "dashboard.html").is_file()  # the page the first screen sends you to


def test_the_makefile_ui_target_is_what_the_readme_says():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    ui = makefile[makefile.index("\nui:") :].split("\n\n")[0]
    assert "vae ui --port 3000" in ui
