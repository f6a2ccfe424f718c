"""docs/python.md's walk-through is a test: every ```python block of its "Walk-through" section,
run in order from the repository's root."""
import os
import re

from conftest import REPO

DOC = os.path.join(REPO, "docs", "python.md")


def blocks():
    text = open(DOC).read()
    section = text[text.index("## Walk-through"):]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_walkthrough_runs(monkeypatch, capsys):
    code = blocks()
    assert len(code) >= 6, "the walk-through lost its code blocks"
    monkeypatch.chdir(REPO)
    ns = {}
    for i, block in enumerate(code):
        exec(compile(block, "%s (block %d)" % (DOC, i + 1), "exec"), ns)
    out = capsys.readouterr().out
    assert "ResFlow" in out and "NSE" in out and "DataError at build/walkthrough/bad.csv:3:" in out
    assert ns["resflow_model"].history and ns["nse_model"].history
    assert len(ns["scores"]) == 1000 and ns["metrics"]["rows"] == 30000
    assert "ranked by ctcvr: WR@5 " in out and ns["metrics"]["ranking"]["rows"] == 30000
