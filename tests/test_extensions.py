"""A user's own method and data without editing paperlab: `methods check` catches each kind of broken method
in one line, and a folder of images in the ImageFolder layout runs a smoke template end to end."""

import textwrap

import pytest

BASE = '''
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from paperlab.lab.distillers.base import Distiller, Params, probe, register


@register("{name}")
class Mine(Distiller):
    class Params(Params):
        beta: float = Field(1.0, ge=0)
        ce_weight: float = Field(1.0, ge=0)

    needs = frozenset({{"pooled"}})

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        self.embed = nn.Linear(probe(student, info).pooled.shape[1], probe(teacher, info).pooled.shape[1])
        self.__dict__["teacher"] = teacher  # not a part of the method (its weights must not train)

    def forward(self, s, t, b):
        ce = F.cross_entropy(s.logits, b.y)
{body}
        return self.p.ce_weight * ce + self.p.beta * term, {{"ce": ce, "term": term}}
'''

CASES = {  # the forward's last lines, and what the check must say
    "good": ("term = (self.embed(s.pooled) - t.pooled).pow(2).mean()", None),
    "unused": ("term = (s.pooled.mean(1, keepdim=True) - t.pooled.mean(1, keepdim=True)).pow(2).mean()",
               "FAIL  gradients reach every trainable part of the method: none reaches embed.weight, embed.bias"),
    "nan": ("term = (self.embed(s.pooled) - t.pooled).pow(2).mean() * float('nan')",
            "FAIL  the loss is finite: nan"),
    "vector": ("term = (self.embed(s.pooled) - t.pooled).pow(2).mean(1)",
               "FAIL  the loss is a scalar: it is (16,); reduce it to one number"),
    "teacher": ("term = (self.embed(s.pooled) - self.teacher(b.x, features=True).pooled).pow(2).mean()",
                "FAIL  the teacher gets no gradient: the loss reaches the teacher's"),
    "random": ("term = (self.embed(s.pooled) - t.pooled).pow(2).mean() * (1 + torch.rand(()).item() * 0 + "
               "__import__('random').random())", "FAIL  two runs with one seed give the same loss"),
    "raises": ("term = t.pooled.grad.sum()", "methods/raises.py:25: AttributeError"),  # the line of the term
}


@pytest.mark.parametrize("case", list(CASES))
def test_methods_check_says_what_is_wrong_in_one_line(cli, home, case):
    body, expected = CASES[case]
    (home / "methods").mkdir(parents=True, exist_ok=True)
    (home / "methods" / f"{case}.py").write_text(BASE.format(name=case, body=textwrap.indent(body, " " * 8)))
    r = cli("methods", "check", case)
    if expected is None:
        assert r.code == 0 and "FAIL" not in r.out, r.out + r.err
        assert "ok    with only CE weighted the loss is plain CE" in r.out
    elif expected.startswith("FAIL"):
        assert r.code == 1 and expected in r.out, r.out + r.err
    else:
        assert r.code == 2 and expected in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_a_folder_of_images_runs_the_smoke_template_and_a_bad_layout_is_one_line(cli, home, tmp_path):
    import numpy as np
    from PIL import Image

    root = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 10)):
        for label, name in enumerate(("bars", "dots")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                image = rng.integers(0, 60, (12, 12)).astype(np.uint8)
                if name == "bars":
                    image[:, ::3] = 255
                else:
                    image[::3, ::3] = 255
                Image.fromarray(image).save(folder / f"{i}.png")
    r = cli("run", "kd-hinton", "--profile", "smoke", "--dataset", "folder", "--data-dir", str(root), "--epochs", "2",
            "--set", "train.val_size=16", "--device", "cpu", "--json")
    assert r.code == 0, r.err
    assert "80 training and 20 test images of 2 classes, 12x12 grey" in r.err
    assert [s["stage"] for s in r.json()["stages"]] == ["teacher", "student", "kd"]
    (root / "test" / "dots").rename(root / "test" / "circles")
    r = cli("run", "kd-hinton", "--profile", "smoke", "--dataset", "folder", "--data-dir", str(root), "--epochs", "1")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert "train/ and test/ have other class folders" in r.err
    r = cli("run", "kd-hinton", "--profile", "smoke", "--dataset", "folder", "--epochs", "1")
    assert r.code == 2 and "--data-dir" in r.err


def test_a_paper_lists_the_templates_whose_paper_it_is(cli, home):
    r = cli("add", "2203.08679")
    assert r.code == 0 and "[templates: dkd]" in r.out, r.out + r.err
    assert "dkd" in cli("show", "2203.08679", "--json").json()["templates"]
    assert "dkd" in cli("list", "--json").json()[0]["templates"]


@pytest.mark.parametrize("text,says", [("name: [unclosed\n", "is not valid YAML at line"),
                                       ("- a\n- list\n", "is not a mapping"), ("", "is not a mapping"),
                                       ("extends: nowhere\nname: broken\n", "extends 'nowhere', which is not a base"),
                                       ("!!python/object:os.system {}\n", "is not valid YAML")])
def test_a_broken_workspace_template_is_one_line_and_hides_no_other(cli, home, text, says):
    (home / "templates").mkdir(parents=True, exist_ok=True)
    path = home / "templates" / "broken.yaml"
    path.write_text(text)
    r = cli("run", "broken", "--profile", "smoke")
    assert r.code == 2 and says in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert str(path) in r.err or "nowhere" in r.err
    listed = cli("templates", "--json")
    assert listed.code == 0 and "dkd" in {t["name"] for t in listed.json()} and listed.err.count("warning") == 1
