"""A template's `pairs:`: per teacher/student pair, the method's settings and the claims, as the reference
configs set them; a run on a listed pair is the template's recipe, not a change, so its claims get a verdict."""

import pytest

from paperlab.errors import BadInput
from paperlab.lab.templates import changed_from_profile, claims, load, pairs, raw
from paperlab.reports.claims import incomparable


def test_dkd_pairs_carry_mdistiller_s_beta_and_claims():
    # mdistiller configs/cifar100/dkd/*.yaml: beta 8 (res32x4_res8x4), 6 (wrn40_2_wrn_16_2), 2 (res56_res20)
    for pair, beta in [("resnet32x4/resnet8x4", 8.0), ("wrn_40_2/wrn_16_2", 6.0), ("resnet56/resnet20", 2.0),
                       ("vgg13/vgg8", 6.0), ("resnet110/resnet32", 2.0)]:
        spec = load("dkd", "paper", {"pair": pair})
        assert f"{spec.teacher.net.kind}/{spec.student.net.kind}" == pair
        assert spec.distill["beta"] == beta and spec.distill["temperature"] == 4.0
        assert changed_from_profile(spec) == []   # the pair's own settings: the template's recipe
        claim = spec.claim_for("dkd")
        assert claim is not None and claim.teacher_net == spec.teacher.net.kind and claim.metric == "top1"
    assert load("dkd", "paper", {"pair": "wrn_40_2/wrn_16_2"}).claim_for("dkd").value == 76.23


def test_the_same_nets_set_by_hand_without_the_pair_s_beta_is_a_change():
    spec = load("dkd", "paper", {"teacher.net.kind": "wrn_40_2", "student.net.kind": "wrn_16_2"})
    assert changed_from_profile(spec) == ["distill.beta=8.0"]


def test_dkd_ls_multiplies_alpha_and_beta_by_the_authors_kd_weight():
    spec = load("dkd-ls", "paper")
    assert (spec.distill["alpha"], spec.distill["beta"], spec.distill["temperature"]) == (9.0, 72.0, 2.0)
    r56 = load("dkd-ls", "paper", {"pair": "resnet56/resnet20"})
    assert (r56.distill["alpha"], r56.distill["beta"], r56.distill["temperature"]) == (18.0, 36.0, 3.0)


def test_claim_defaults_fill_every_row_and_pairs_name_their_nets():
    found = claims("kd-cifar")
    mine = [c for c in found if c.stage == "kd"]
    assert {(c.teacher_net, c.student_net, c.value) for c in mine} == {
        ("resnet32x4", "resnet8x4", 73.33), ("wrn_40_2", "wrn_16_2", 74.92), ("resnet56", "resnet20", 70.66)}
    assert all(c.metric == "top1" and c.dataset == "cifar100" and c.epoch == "last" and c.tolerance == 1.0
               for c in found)
    teacher = [c for c in found if c.stage == "teacher"]   # the base's, with the base's own defaults
    assert {c.value for c in teacher} == {79.42, 75.61, 72.34}
    dist = {(c.teacher_net, c.value) for c in claims("dist") if c.stage == "dist"}
    assert ("resnet32x4", 76.31) in dist   # the DIST authors' README, not a third party's table


def test_unknown_or_malformed_pairs_are_one_line():
    with pytest.raises(BadInput, match=r"template 'dkd' has no pair 'wrn_40_2/wrn_16_3' \(pairs: resnet32x4/resnet8x4"):
        load("dkd", "paper", {"pair": "wrn_40_2/wrn_16_3"})
    with pytest.raises(BadInput, match="a pair is TEACHER/STUDENT"):
        load("dkd", "paper", {"pair": "wrn_40_2"})
    assert pairs(raw("dkd"))[0] == "resnet32x4/resnet8x4" and "resnet110/resnet32" in pairs(raw("dkd"))


def test_pair_on_the_command_line(cli):
    r = cli("templates", "show", "dkd", "--pair", "wrn_40_2/wrn_16_2")
    assert r.code == 0 and "beta: 6.0" in r.out and "kind: wrn_16_2" in r.out
    r = cli("run", "dkd", "--pair", "vgg13/vgg9", "--device", "cpu")
    assert r.code == 2 and r.err.strip().splitlines()[-1].startswith("error: template 'dkd' has no pair 'vgg13/vgg9'")


def test_a_template_that_departs_from_its_source_s_code_gives_no_verdict():
    assert incomparable({}, "the phase runs in training mode") == \
        "loss differs from the source's code: the phase runs in training mode"
    assert incomparable({"paperlab.data_note": "a copy"}, "x") == \
        "ours on other data (a copy); loss differs from the source's code: x"
