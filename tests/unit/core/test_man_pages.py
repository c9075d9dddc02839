"""The man pages as a reader gets them: rendered by man(1), with no troff left raw and no
words run together (an alternating-font macro such as .BR joins its arguments without
spaces, so `.BR \\-\\-check ); a lock` prints ");alock")."""
import os
import re
import subprocess
from pathlib import Path

import pytest

MAN = Path(__file__).resolve().parents[3] / "man"
PAGES = sorted(MAN.glob("*.1"))
WORD = re.compile(r"[A-Za-z]{2,}")
RAW_TROFF = re.compile(r"\\f[BIRP(]|\\-|\\\(|\\\*|\\e|^\.[A-Z]{1,2}\b", re.M)


def rendered(page):
    env = {**os.environ, "MANWIDTH": "250", "MAN_KEEP_FORMATTING": "",
           "MANROFFOPT": "-rHY=0"}  # no hyphenation: every word whole on its line
    done = subprocess.run(["man", "-l", str(page)], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return re.sub(r".\x08", "", done.stdout)  # overstrike (bold, underline) if any


def source_words(page):
    text = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\\(..", "", page.read_text())
    return set(WORD.findall(text.replace("\\-", "-")))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_a_page_renders_without_raw_troff_or_run_together_words(page):
    text = rendered(page)
    assert len(text) > 1000
    assert not RAW_TROFF.findall(text), RAW_TROFF.findall(text)
    known = source_words(page) | {"General", "Commands", "Manual", "User"}
    unknown = sorted(set(WORD.findall(text)) - known)
    assert not unknown, f"words the source does not hold (run together?): {unknown}"


def test_the_check_sees_words_run_together(tmp_path):
    page = tmp_path / "t.1"
    page.write_text(".TH T 1\n.SH NAME\nt \\- a test page\n.SH DESCRIPTION\n"
                    + "Some plain words here to make it long enough.\n" * 40
                    + "without\n.BR \\-\\-check ); a lock directory\n")
    assert "alock" in rendered(page)
    unknown = set(WORD.findall(rendered(page))) - source_words(page)
    assert "alockdirectory" in unknown
