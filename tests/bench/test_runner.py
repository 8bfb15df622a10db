"""What every bench script shares around its measurements: options, data set, writing pages."""

from argparse import Namespace
from pathlib import Path

from bench.runner import bench_options, publish, publish_section, run_page, spread
from blurcore.evaluation import Sample, load_samples


def test_options_take_a_data_set_and_a_limit_only_where_there_is_a_data_set():
    with_set = bench_options("doc", Path("docs/x.md"), Path("dev")).parse_args(["--limit", "6"])
    assert (with_set.out, with_set.dataset, with_set.limit) == (Path("docs/x.md"), Path("dev"), 6)
    without = bench_options("doc", Path("docs/x.md"), None).parse_args(["--out", "/tmp/x.md"])
    assert vars(without) == {"out": Path("/tmp/x.md")}


def test_spread_takes_evenly_spaced_items_up_to_the_limit():
    assert spread(range(50), 6) == [0, 9, 18, 27, 36, 45]  # photos with faces, then negatives
    assert spread(range(5), 8) == [0, 1, 2, 3, 4]
    assert spread(range(5), None) == [0, 1, 2, 3, 4]


def test_run_page_measures_the_limited_set_and_writes_its_page(tmp_path, capsys):
    out = tmp_path / "page.md"
    argv = ["--out", str(out), "--limit", "3"]
    assert (
        run_page("doc", out, tmp_path, load=lambda _args: range(10), measure=count, argv=argv) == 0
    )
    assert out.read_text() == "measured [0, 4, 8]\n"
    assert capsys.readouterr().out == "measured [0, 4, 8]\n"


def test_run_page_writes_nothing_where_measure_printed_instead(tmp_path):
    out = tmp_path / "page.md"
    run_page("doc", out, tmp_path, load=lambda _args: [1], measure=lambda _a, _i: None, argv=[])
    assert not out.exists()


def test_an_absent_data_set_is_said_and_measures_nothing(tmp_path, capsys):
    out = tmp_path / "page.md"

    def load(args: Namespace) -> list[Sample]:
        return load_samples(args.dataset)

    assert run_page("doc", out, tmp_path / "dev", load=load, measure=count, argv=[]) == 0
    assert not out.exists()
    said = capsys.readouterr().err
    assert f"nothing measured, {out} left as it was" in said
    assert "holds neither annotations.json nor negatives.json" in said


def count(_args: Namespace, items: list[object]) -> str:
    return f"measured {items}"


def test_publish_prints_the_page_and_writes_it_with_a_final_newline(tmp_path, capsys):
    out = tmp_path / "docs" / "page.md"
    publish("# Page\n\ntext", out)
    assert out.read_text() == "# Page\n\ntext\n"
    assert capsys.readouterr().out == "# Page\n\ntext\n"


def test_publish_section_replaces_the_last_run_and_keeps_the_hand_written_rest(tmp_path):
    out = tmp_path / "reliability.md"
    out.write_text("# Reliability\n\nBy hand.\n")
    publish_section("first run", out, "load-bench")
    publish_section("second run", out, "load-bench")
    assert out.read_text() == (
        "# Reliability\n\nBy hand.\n\n"
        "<!-- load-bench:start -->\nsecond run\n<!-- load-bench:end -->\n"
    )
