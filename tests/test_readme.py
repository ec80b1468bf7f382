"""The README's API example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")


def test_readme_example_runs(tmp_path, monkeypatch):
    text = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "km.png").exists() and (tmp_path / "km.svg").exists()
    assert namespace["fg"].converged and namespace["gray"].dof == 1


def test_readme_main_job_is_the_demo():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    commands = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert commands[0].strip().endswith(".venv/bin/allotrack demo")
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    readme_test = commands[1].strip().split(" && ", 1)[1].replace("pip install -e", "pip install --quiet -e")
    assert readme_test in ci  # the README's test command is what CI runs (CI only adds --quiet)


def test_readme_table_layout_is_the_schema():
    """The README's record-table layout lists exactly the schema's tables, columns, required marks and natural
    keys, in order."""
    from allotrack.records.schema import TABLES

    text = (Path(__file__).parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|$", text, re.M)
    expected = [(t.name, ", ".join(c.name + ("*" if c.required else "") for c in t.columns), ", ".join(t.natural_key))
                for t in TABLES.values()]  # fmt: skip
    assert [(name, columns.strip(), key.strip()) for name, columns, key in rows] == expected
