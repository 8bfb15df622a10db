"""What each make target installs, read from its dry run (``make -n -B``, which runs nothing):
running the service gets no browser, load generator or proxy; the tests and benchmarks get
theirs from the project's own files, as CI on a clean machine needs."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APT_LOOP = re.compile(r"for p in ([^;]*); do command -v")
TEST_TOOLS = {"redis-server", "chromium", "nginx", "hey"}


def dry_run(target: str) -> list[str]:
    """The shell lines ``make TARGET`` would run, every prerequisite included."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed; the project's commands are make targets")
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def apt_packages(lines: list[str]) -> set[str]:
    return {
        package for line in lines for match in APT_LOOP.findall(line) for package in match.split()
    }


def test_install_installs_no_debian_package() -> None:
    assert apt_packages(dry_run("install")) == set()


def test_run_installs_only_a_redis_server_and_only_when_none_answers() -> None:
    lines = [line for line in dry_run("run") if APT_LOOP.search(line)]
    assert apt_packages(lines) == {"redis-server"}
    (line,) = lines
    assert line.index("redis_answers") < line.index("||") < line.index("for p in")


def test_test_installs_the_tools_the_tests_use() -> None:
    assert apt_packages(dry_run("test")) == TEST_TOOLS


@pytest.mark.parametrize(
    ("target", "tools"),
    [
        ("bench-load", {"redis-server", "hey"}),
        ("bench", {"redis-server"}),
        ("deploy-check", {"nginx"}),
    ],
)
def test_bench_and_deploy_targets_install_their_own_tools(target: str, tools: set[str]) -> None:
    assert apt_packages(dry_run(target)) == tools
