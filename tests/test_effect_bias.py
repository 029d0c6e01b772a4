"""The two figures of what distillation did, and the bias shift of the mythical-digit experiment, on
constructed numbers; then the omit-3 template end to end on digits."""

import pytest
import torch

from paperlab.lab import bias
from paperlab.lab.effect import Spread, effect, summarise, welch


def test_errors_saved_and_gap_closed_by_hand():
    e = effect(teacher=67, baseline=146, distilled=74)  # the paper's MNIST numbers
    assert e.saved == 72 and e.gap_closed == pytest.approx(72 / 79)
    hurt = effect(teacher=58, baseline=69, distilled=111)  # our old smoke profile
    assert hurt.saved == -42 and hurt.gap_closed == pytest.approx(-42 / 11)
    assert effect(teacher=80, baseline=70, distilled=60).gap_closed is None  # no gap: teacher no better


def test_summary_over_seeds_has_mean_std_and_wins():
    s = summarise([effect(10, 20, 15), effect(10, 20, 25), effect(10, 30, 20)])
    assert s.n == 3 and s.saved == pytest.approx((5 - 5 + 10) / 3) and s.wins == 2
    assert s.gap_closed == pytest.approx((0.5 - 0.5 + 0.5) / 3)
    assert s.saved_std == pytest.approx(torch.tensor([5.0, -5.0, 10.0]).std().item())
    text = s.text()
    assert "saves 3.33 ± 7.6 errors" in text and "closes 17% ± 58%" in text and "in 2 of 3" in text
    assert summarise([effect(10, 20, 21)]).text().startswith("adds 1 error against")
    assert "no gap to close" in summarise([effect(30, 20, 21)]).text()


def test_one_seed_names_the_effect_only_beyond_the_profile_s_spread():
    spread = Spread(errors=4, seeds=5)
    within = summarise([effect(20, 44, 43)], spread)
    assert within.named is False and within.as_dict()["named"] is False
    assert within.text() == ("one seed: differences under ±4 errors are within this profile's seed-to-seed spread "
                             "(measured over 5 seeds, see README); this one saves 1 error")
    assert "closes" not in within.text()   # no share of the gap drawn from noise
    hurt = summarise([effect(20, 44, 47)], spread)
    assert hurt.named is False and "this one adds 3 errors" in hurt.text()
    beyond = summarise([effect(20, 44, 30)], spread)
    assert beyond.named is True and beyond.text().startswith("saves 14 errors against the baseline, closes 58%")
    unknown = summarise([effect(20, 44, 30)])
    assert unknown.named is None and "spread is not measured" in unknown.text()


def test_several_seeds_name_the_effect_by_welch_s_test():
    clear = summarise([effect(20, 44, 30), effect(21, 45, 33), effect(22, 41, 35)])
    assert clear.named is True and clear.p == pytest.approx(welch([30, 33, 35], [44, 45, 41]))
    assert clear.p < 0.05 and "Welch's p" in clear.text()
    noise = summarise([effect(20, 44, 43), effect(21, 45, 46), effect(22, 41, 40)])
    assert noise.named is False and noise.p > 0.5 and "not beyond what the seeds vary" in noise.text()
    # by hand: means 2 and 5, variances 1 and 1, n 3: t = -3 / sqrt(2/3), df 4
    from scipy import stats
    assert welch([1, 2, 3], [4, 5, 6]) == pytest.approx(2 * stats.t.sf(3 / (2 / 3) ** 0.5, 4))
    assert welch([1], [2, 3]) is None and welch([2, 2], [2, 2]) == 1.0 and welch([1, 1], [2, 2]) == 0.0


def test_bias_shift_is_chosen_on_the_given_logits_and_counts_errors_by_class():
    # three examples of class 1 that the model under-rates by 2, and two of class 0 it gets right
    logits = torch.tensor([[3.0, 1.5], [3.0, 1.2], [2.0, 1.0], [4.0, 0.0], [3.0, 0.0]])
    y = torch.tensor([1, 1, 1, 0, 0])
    assert bias.errors(logits, y) == 3 and bias.on_classes(logits, y, [1]) == 3
    shift = bias.choose(logits, y, [1])
    assert shift == pytest.approx(1.9)  # the smallest shift that puts all three 1s right and no 0 wrong
    assert bias.errors(logits, y, [1], shift) == 0
    assert bias.errors(logits, y, [1], 3.5) == 1  # too far: the 0 at (3, 0) now reads as a 1
    assert bias.on_classes(logits, y, [1], 3.5) == 0
    assert bias.choose(torch.tensor([[0.0, 1.0]]), torch.tensor([1]), [1]) == 0.0  # ties: the smallest |shift|


def test_omit3_leaves_threes_out_of_the_transfer_set_and_logs_the_shift(cli, home):
    from mlflow.tracking import MlflowClient

    r = cli("run", "kd-hinton-omit3", "--profile", "smoke", "--epochs", "30", "--device", "cpu", "--json")
    assert r.code == 0, r.err
    kd = r.json()["stages"][2]
    metrics = MlflowClient(f"sqlite:///{home / 'mlflow.db'}").get_run(kd["run_id"]).data.metrics
    assert metrics["test_error_unshifted"] == kd["test_error"]
    assert metrics["test_error_on_shifted_classes_unshifted"] > 20  # of about 50 test 3s: most are missed
    assert metrics["test_error_on_shifted_classes"] < metrics["test_error_on_shifted_classes_unshifted"]
    assert -10 <= metrics["bias_shift"] <= 10 and "test_error_paper_shift" in metrics
    table = cli("run", "kd-hinton-omit3", "--profile", "smoke", "--epochs", "30", "--device", "cpu")
    assert "bias of classes [3] shifted by" in table.out and "chosen on the validation split" in table.out


def test_comparisons_pick_the_baseline_and_each_student_s_teacher():
    from paperlab.lab.effect import StageInfo, comparisons

    ab = [StageInfo("teacher", "teacher"), StageInfo("student", "student"),
          StageInfo("ab-init", "student", teacher="teacher"), StageInfo("ab", "student", init="ab-init")]
    assert comparisons(ab) == [("ab", "teacher", "student")]  # the phase is left out, compared via its teacher
    takd = [StageInfo("teacher", "teacher"), StageInfo("student", "student"),
            StageInfo("assistant", "assistant", teacher="teacher"), StageInfo("takd", "student", teacher="assistant")]
    assert comparisons(takd) == [("takd", "assistant", "student")]
    assert comparisons([StageInfo("teacher", "teacher"), StageInfo("kd", "student", teacher="teacher")]) == []
