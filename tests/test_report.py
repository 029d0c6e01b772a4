"""`paperlab report` over real runs in a real MLflow store; escaping; a real headless browser."""

import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image as mpimg
import pytest

SMOKE = ["run", "kd-hinton", "--profile", "smoke", "--device", "cpu", "--json"]
EVIL_TITLE = '<script>alert(1)</script> "><img src=x onerror=alert(2)>'
EVIL_TAG = "<script>alert(3)</script>"
EVIL_NOTE = '<script>alert(4)</script>\n\n"><img src=x onerror=alert(5)> and [link](javascript:alert(6))'


class Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, arxiv_stub):
    """One workspace with a paper whose title, tag and note carry markup, and four smoke runs."""
    import os

    home = tmp_path_factory.mktemp("report") / "home"
    env = {"PAPERLAB_HOME": str(home), "PAPERLAB_ARXIV_URL": arxiv_stub.url, "PAPERLAB_ARXIV_DELAY": "0",
           "PAPERLAB_REGISTER": "0"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from paperlab.cli import main

    def cli(*args):
        import contextlib
        import sys

        out, err = io.StringIO(), io.StringIO()
        sys.argv = ["paperlab", *args]
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code or 0
        return code, out.getvalue(), err.getvalue()

    bib = home.parent / "evil.bib"
    home.mkdir(parents=True)
    bib.write_text("@misc{x, title={" + EVIL_TITLE + "}, author={Geoffrey Hinton}, year={2015}, eprint={1503.02531}}\n")
    assert cli("import", str(bib))[0] == 0
    assert cli("tag", "1503.02531", EVIL_TAG)[0] == 0
    note = home / "notes" / "1503.02531.md"
    note.write_text(note.read_text().replace("## Summary\n", "## Summary\n" + EVIL_NOTE + "\n"))
    runs = []
    for extra in ([], ["--seed", "1"], ["--set", "distill.temperature=8"]):
        code, out, err = cli(*SMOKE, "--epochs", "12", *extra)   # a short recipe: the report's parts, not numbers
        assert code == 0, err
        runs.append(out)
    yield home, cli
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_html_report_holds_the_sections_in_order_and_escapes_everything(tracked, tmp_path):
    home, cli = tracked
    out = tmp_path / "r.html"
    code, stdout, err = cli("report", "--paper", "1503.02531", "-o", str(out))
    assert code == 0, err
    assert stdout.strip() == str(out.resolve())
    page = out.read_text()
    order = ["The reviewer's note", "Paper vs reproduced", "<h2>Runs", "<h2>Plots", "Where it fails",
             "Reproducibility"]
    positions = [page.index(h) for h in order]
    assert positions == sorted(positions)
    parser = Elements()
    parser.feed(page)
    tags = [t for t, _ in parser.found]
    assert "script" not in tags
    assert all(not any(k.startswith("on") for k in attrs) for _, attrs in parser.found)
    images = [attrs["src"] for t, attrs in parser.found if t == "img"]
    assert len(images) >= 5 and all(src.startswith("data:image/png;base64,") for src in images)
    assert all(not attrs.get("href", "").startswith("javascript") for _, attrs in parser.found)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;script&gt;alert(3)&lt;/script&gt;" in page
    assert "alert(4)" in page  # the note's text is there, as text
    assert "not comparable: ours on digits, the paper&#39;s on mnist" in page
    # teacher and student: three runs of one configuration (seeds 0, 0 and 1; the temperature does not shape
    # them), two samples: seed 0's second run is the cached model again
    assert len(re.findall(r"± [\d.,]+ \(2\) <small>digits", page)) == 2
    assert re.search(r"<td>kd</td><td class=\"n\">74 <small>errors, epoch not stated, runs: 1, mnist</small></td>\s*"
                     r"<td class=\"n\">[\d,]+ \(1\)", page)
    assert "distill.temperature" in page  # the swept parameter is a runs-table column
    assert "Test error against distill.temperature" in page
    assert "<link" not in page and 'src="http' not in page  # self-contained: nothing fetched from a network
    for src in images:
        assert mpimg.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png").size > 0


def test_markdown_report_writes_images_beside_it(tracked, tmp_path):
    _, cli = tracked
    out = tmp_path / "r.md"
    code, _, err = cli("report", "--template", "kd-hinton", "--format", "md", "-o", str(out))
    assert code == 0, err
    text = out.read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert linked and all((tmp_path / link).is_file() for link in linked)
    assert "<script>" not in text and "<img" not in text
    assert "## Paper vs reproduced" in text and "| kd |" in text


def test_report_by_run_ids_and_bad_input(tracked, tmp_path, arxiv):  # arxiv: the stub as a fresh one (xdist order)
    _, cli = tracked
    import json

    code, out, _ = cli("runs", "--json")
    runs = json.loads(out)
    parent = runs[0]["parent_run_id"]
    target = tmp_path / "p.html"
    code, _, err = cli("report", "--run", parent, "-o", str(target))
    assert code == 0, err
    page = target.read_text()
    mine = {r["run_id"] for r in runs if r["parent_run_id"] == parent}
    assert len(mine) == 3 and all(run_id in page for run_id in mine)  # the parent's three stages
    assert not any(r["run_id"] in page for r in runs if r["run_id"] not in mine)
    assert cli("report", "--run", "0" * 32)[0] == 2  # issue 13, defect 29: bad input, not a failure
    code, _, err = cli("report", "--paper", "1412.6550")
    assert code == 2 and "no finished runs found for 1412.6550" in err
    folder = tmp_path / "reports"
    folder.mkdir()
    code, out, err = cli("report", "--run", parent, "-o", str(folder))  # a folder: the default name inside
    assert code == 0 and Path(out.strip()).parent == folder and Path(out.strip()).is_file(), err
    code, out, err = cli("report", "--run", parent, "-f", "md", "-o", str(tmp_path / "rep"))
    assert code == 0 and out.strip().endswith("rep.md") and (tmp_path / "rep_files").is_dir(), err
    assert not (tmp_path / "rep").exists()
    assert cli("add", "1412.6550")[0] == 0 and cli("link", "1412.6550", "kd-hinton")[0] == 0
    linked = tmp_path / "linked.html"
    code, _, err = cli("report", "--paper", "1412.6550", "-o", str(linked))
    assert code == 0, err  # the runs of kd-hinton, linked by hand, though their own paper is 1503.02531
    assert "FitNets" in linked.read_text() and all(r["run_id"] in linked.read_text() for r in runs)
    assert cli("report", "--paper", "1503.02531", "--template", "kd-hinton")[0] == 2
    assert cli("report")[0] == 2
    assert cli("report", "--template", "kd-hintn")[0] == 2
    assert cli("report", "--template", "kd-hinton", "--format", "pdf")[0] == 2


@pytest.mark.skipif(not shutil.which("chromium"), reason="no chromium (apt-get install chromium)")
def test_the_page_renders_in_a_headless_browser(tracked, tmp_path):
    _, cli = tracked
    page = tmp_path / "r.html"
    assert cli("report", "--template", "kd-hinton", "-o", str(page))[0] == 0
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,3000",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    pixels = mpimg.imread(shot)
    assert pixels.shape[0] == 3000 and pixels.std() > 0.05  # not a blank page
    dark = (pixels[..., :3].mean(axis=2) < 0.5).mean()
    assert dark > 0.01  # text and figures drawn


def test_runs_on_another_copy_of_the_data_are_not_averaged_with_the_newest():
    """Two teacher runs with the same settings, one on the official MNIST and a newer one on a copy: the claim
    row takes the newer run alone and gives it no verdict."""
    from paperlab.reports.claims import claim_rows as _claims

    def run(sha, errors, note=None):
        tags = {"paperlab.dataset": "mnist", "paperlab.dataset_sha256": sha, **({"paperlab.data_note": note} if note
                                                                               else {})}
        return {"template": "kd-hinton", "stage": "teacher", "metrics": {"test_error": errors}, "tags": tags,
                "params": {"train.lr": "1.0"}}

    rows = [r for r in _claims([run("copy", 200.0, "not the official release"), run("official", 70.0)],
                               ["kd-hinton"]) if r.stage == "teacher"]
    assert len(rows) == 1 and rows[0].n == 1 and rows[0].ours_mean == 200.0
    assert rows[0].verdict == "not comparable: ours on other data (not the official release)"
    official = [r for r in _claims([run("official", 70.0)], ["kd-hinton"]) if r.stage == "teacher"][0]
    assert official.verdict == "reproduced" and official.ours_mean == 70.0


def test_misclassified_examples_are_tiled_into_one_picture_by_hand():
    """Two 2x2 grey images, two a row, a band of one pixel above each: ink on paper, white elsewhere, and
    each label anchored at the middle of its tile's top edge; colour is clipped to [0, 1]."""
    import numpy as np

    from paperlab.lab.artifacts import mosaic

    grey = np.array([[[[0.0, 1.0], [0.25, 0.5]]], [[[1.0, 1.0], [1.0, 0.0]]]], dtype=np.float32)
    picture, anchors = mosaic(grey, cols=2, band=0.5, gap=1)
    assert picture.shape == (4, 8, 3)  # one row of cells (1 + 2 + 1) high and (1 + 2 + 1) wide
    assert picture[1:3, 1:3, 0].tolist() == [[1.0, 0.0], [0.75, 0.5]]
    assert picture[1:3, 5:7, 2].tolist() == [[0.0, 0.0], [0.0, 1.0]]
    white = np.ones((4, 8), dtype=bool)
    white[1:3, 1:3] = white[1:3, 5:7] = False
    assert (picture[white] == 1.0).all()
    assert anchors == [(1.5, 0.4), (5.5, 0.4)]
    colour, _ = mosaic(np.full((1, 3, 1, 1), 2.0, dtype=np.float32), cols=3)
    assert colour.shape == (3, 9, 3) and colour.max() == 1.0


def test_a_seed_run_again_is_not_another_sample():
    """Three teacher runs of seed 0 (one trained, two read from the cache) and one of seed 1: the claim row
    averages two values, one per seed, the newest of each; so does the effect over parent runs."""
    from paperlab.reports.claims import claim_rows as _claims
    from paperlab.reports.collect import _effects

    def run(seed, errors, stage="teacher", parent="p", **tags):
        return {"template": "kd-hinton", "profile": "paper", "stage": stage, "parent_run_id": parent,
                "metrics": {"test_error": errors}, "test_error": errors, "params": {"train.lr": "1.0"},
                "tags": {"paperlab.dataset": "mnist", "paperlab.dataset_sha256": "x", "paperlab.seed": str(seed),
                         "paperlab.role": "student" if stage != "teacher" else "teacher", **tags}}

    teachers = [run(1, 60.0), run(0, 70.0, **{"paperlab.reused_from": "a"}), run(0, 70.0), run(0, 90.0)]
    row = next(r for r in _claims(teachers, ["kd-hinton"]) if r.stage == "teacher")
    assert (row.n, row.ours_mean) == (2, 65.0)

    def parent(name, seed, kd):
        return [run(seed, 100.0, "teacher", name), run(seed, 200.0, "student", name),
                run(seed, kd, "kd", name, **{"paperlab.taught_by": "teacher"})]

    newest_first = [*parent("p3", 0, 150.0), *parent("p2", 0, 150.0), *parent("p1", 1, 120.0)]
    (name, summary), = _effects(newest_first)
    assert name == "kd" and summary.n == 2


def test_the_sweep_figure_plots_one_stage_against_its_numeric_settings():
    """kd-hinton-omit3's two distilled stages (kd, kd78) differ in their profile's name and their shift: no
    sweep (the report stopped on float('fast+only-7-8')). A stage run at two temperatures and two seeds is one:
    against the temperature, the mean test errors per point."""
    from types import SimpleNamespace

    from paperlab.reports.plots import _swept, sweep

    def run(stage, errors, seed=0, **params):
        return {"stage": stage, "test_error": errors, "tags": {"paperlab.taught_by": "teacher"},
                "params": {"seed": str(seed), **params}}

    omit = [run("kd", 103.0, profile="fast", paper_shift="3.5"), run("kd78", 563.0, profile="fast+only-7-8",
                                                                     paper_shift="-7.6")]
    assert _swept(omit) == ([], []) and sweep(SimpleNamespace(runs=omit)) is None
    grid = [run("kd", e, seed, **{"distill.temperature": t, "profile": "smoke"})
            for e, seed, t in ((40.0, 0, "4.0"), (44.0, 1, "4.0"), (50.0, 0, "20.0"))]
    group, keys = _swept([omit[1], *grid])  # seeds are repeats, not a setting swept
    assert keys == ["distill.temperature"] and group == grid
    two = [{**r, "template": "kd-hinton"} for r in grid[:2]] + [{**grid[2], "template": "kd-hinton-omit3"}]
    assert _swept(two) == ([], [])  # kd-hinton's runs share one temperature; omit3's kd is another stage
    figure = sweep(SimpleNamespace(runs=grid))
    assert figure.name == "sweep" and "distill.temperature" in figure.title


def test_a_report_over_several_templates_names_the_template_of_each_claim():
    """kd-hinton's kd (74 errors) and kd-hinton-omit3's kd (206) are other claims: a paper's report names each
    row's template; a report of one template does not."""
    from paperlab.reports.claims import claim_rows as _claims

    def run(template, errors):
        return {"template": template, "stage": "kd", "metrics": {"test_error": errors}, "params": {},
                "tags": {"paperlab.dataset": "mnist", "paperlab.dataset_sha256": "x"}}

    runs = [run("kd-hinton", 100.0), run("kd-hinton-omit3", 125.0)]
    rows = {r.label: r.ours_mean for r in _claims(runs, ["kd-hinton", "kd-hinton-omit3"]) if r.stage == "kd"}
    assert rows["kd-hinton: kd"] == 100.0 and rows["kd-hinton-omit3: kd"] == 125.0
    assert "kd-hinton-omit3: kd (test error shifted)" in rows
    assert {r.label for r in _claims(runs[:1], ["kd-hinton"])} == {"teacher", "student", "kd"}


def test_a_paper_report_names_the_template_of_each_run_and_effect(cli, tmp_path):
    """Two templates of one paper (kd-hinton and kd-hinton-omit3, whose distilled stages are both 'kd'): the
    runs table and the distillation line of `report --paper` say which template each belongs to."""
    for template in ("kd-hinton", "kd-hinton-omit3"):
        r = cli("run", template, "--profile", "smoke", "--epochs", "1", "--device", "cpu")
        assert r.code == 0, r.err
    r = cli("report", "--paper", "1503.02531", "-f", "md", "-o", str(tmp_path / "p.md"))
    assert r.code == 0, r.err
    text = (tmp_path / "p.md").read_text()
    assert "| kd-hinton: kd |" in text and "| kd-hinton-omit3: kd |" in text
    assert "- kd-hinton-omit3: kd: " in text  # the newest run's template
