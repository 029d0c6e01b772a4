"""`paperlab compare`: one ranking per pair, claims against ours over seeds, Welch's t-test, failures."""

import re
import shutil
import subprocess

import pytest
from markdown_it import MarkdownIt

SMOKE = ["run", "kd-hinton", "--profile", "smoke", "--device", "cpu", "--epochs", "3"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """Two methods on the smoke pair over two seeds (KD at T=8 and, renamed, KD at T=2), and a run on a
    student of another size, which must get a ranking of its own."""
    import os

    from conftest import Result

    home = tmp_path_factory.mktemp("compare") / "home"
    old = os.environ.get("PAPERLAB_HOME")
    os.environ["PAPERLAB_HOME"] = str(home)

    def cli(*args):  # in this process: a module's worth of runs without a process start each
        import contextlib
        import io
        import sys

        from paperlab.cli import main

        out, err = io.StringIO(), io.StringIO()
        sys.argv, code = ["paperlab", *args], 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code or 0
        return Result(code, out.getvalue(), err.getvalue())

    for seed in ("0", "1"):
        assert cli(*SMOKE, "--seed", seed).code == 0
        assert cli(*SMOKE, "--seed", seed, "--set", "name=kd-t2", "--set", "distill.temperature=2").code == 0
    assert cli(*SMOKE, "--set", "student.net.hidden=[32]").code == 0
    yield home, cli
    if old is None:
        os.environ.pop("PAPERLAB_HOME")
    else:
        os.environ["PAPERLAB_HOME"] = old


def test_a_ranking_per_pair_with_significance_and_failures(compared, tmp_path):
    home, cli = compared
    out = tmp_path / "cmp.md"
    r = cli("compare", "--teacher", "cnn", "--student", "mlp", "-f", "md", "-o", str(out))
    assert r.code == 0, r.err
    text = out.read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert len(sections) == 2 and "2 different pairs" in text  # the other student size is ranked apart
    two_seeds = next(s for s in sections if "(2) |" in s)
    ranked = re.findall(r"^\| (\d) \| ([\w-]+) \(kd\) \| – \| ([\d.]+) ± [\d.]+ \(2\)", two_seeds, flags=re.M)
    assert [rank for rank, _, _ in ranked] == ["1", "2"] and {name for _, name, _ in ranked} == {"kd-hinton", "kd-t2"}
    assert float(ranked[0][2]) >= float(ranked[1][2])  # sorted by our number
    assert re.search(r"(above|below) baseline by [\d.]+ points: (not )?significant at 0.05 \(Welch's t-test, "
                     r"p = [\d.e-]+, n = 2, 2 seeds\)", two_seeds), two_seeds
    assert "Where each method fails" in two_seeds and "teacher right and it wrong on" in two_seeds
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    assert rendered.count("<table>") == 2 and all((out.parent / src).is_file()
                                                 for src in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text))
    page = tmp_path / "cmp.html"
    assert cli("compare", "--teacher", "cnn", "-o", str(page)).code == 0
    html = page.read_text()
    assert html.count('src="data:image/png;base64,') == 2 and "<script" not in html
    if shutil.which("chromium"):
        shot = tmp_path / "shot.png"
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,2400",
                        f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
        import matplotlib.image as mpimg

        assert mpimg.imread(shot).std() > 0.05  # drawn, not blank


def test_bad_selections_are_one_line(compared):
    _, cli = compared
    for args, code, message in ((["--teacher", "resnet110"], 2, "no finished runs"),
                                (["--tag", "nobody-uses-this"], 2, "no paper has the tag"),
                                (["--template", "kd-hintn"], 2, "unknown template"),
                                ([], 2, "name what to compare"),
                                (["--teacher", "cnn", "-f", "pdf"], 2, "unknown format")):
        r = cli("compare", *args)
        assert r.code == code and message in r.err and len(r.err.strip().splitlines()) == 1, (args, r.err)


def test_numbers_keep_their_integer_digits():
    from paperlab.reports.render import _num

    assert [_num(100.2, 0), _num(100.0, 1), _num(85.40, 2), _num(1500.0, 0), _num(1083)] == [
        "100", "100", "85.4", "1,500", "1,083"]  # 100.2 with no decimals once printed as "1"


def test_a_tag_selects_its_papers_templates_and_shows_their_notes(compared, tmp_path):
    _, cli = compared
    bib = tmp_path / "week3.bib"
    bib.write_text("@article{hinton2015distilling, title={Distilling the Knowledge in a Neural Network},"
                   " author={Hinton, Geoffrey}, year={2015}, eprint={1503.02531}}\n", encoding="utf-8")
    assert cli("import", str(bib), "--tag", "week3").code == 0
    out = tmp_path / "week3.md"
    r = cli("compare", "--tag", "week3", "-f", "md", "-o", str(out))
    assert r.code == 0, r.err
    text = out.read_text()
    heading = text.splitlines()[0]  # every template whose recipe names 1503.02531 (kd-cifar, ensemble-kd too)
    assert heading.startswith("# Method comparison: ") and "kd-hinton, kd-hinton-omit3" in heading and "tag week3" in heading
    assert "## Distilling the Knowledge in a Neural Network (arXiv:1503.02531)" in text
    assert "| kd-hinton (kd) |" in text and "kd-t2" not in text  # only the tagged paper's templates


def test_a_claim_of_the_last_epoch_is_compared_with_our_last_epoch():
    """RepDistiller's numbers are of the last epoch: ours is compared there (the ranking stays on the best-
    validation epoch); runs that did not record their last epoch get no verdict."""
    from paperlab.reports.compare import Row

    row = Row("fitnet", "fitnet", "method", "fitnet", None, acc={0: 74.0, 1: 76.0}, acc_last={0: 72.0, 1: 73.0},
              claim=73.5, claim_tolerance=1.0, claim_epoch="last")
    assert row.mean == 75.0 and row.at_claim_epoch == 72.5 and row.diff == pytest.approx(-1.0)
    assert row.verdict == "reproduced"
    best = Row("fitnet", "fitnet", "method", "fitnet", None, acc={0: 74.0, 1: 76.0}, acc_last={0: 72.0, 1: 73.0},
               claim=73.5, claim_tolerance=1.0)
    assert best.diff == pytest.approx(1.5) and best.verdict == "close"
    unknown = Row("fitnet", "fitnet", "method", "fitnet", None, acc={0: 74.0, 1: 76.0}, acc_last={0: 72.0},
                  claim=73.5, claim_epoch="last")
    assert unknown.diff is None and unknown.verdict.startswith("not comparable: the paper's number is of the last")
