"""The KD objective against values worked out by hand (Hinton et al. 2015, section 2)."""

import math

import pytest
import torch

from paperlab.lab.distillers import CrossEntropy, HintonKD, get


def _softmax(values, t):
    exps = [math.exp(v / t) for v in values]
    return [e / sum(exps) for e in exps]


def test_soft_term_is_batchmean_kl_times_t_squared():
    student = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 2.0]])
    teacher = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    labels = torch.tensor([1, 2])
    t = 4.0
    by_hand = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist()):
        p, q = _softmax(t_row, t), _softmax(s_row, t)
        by_hand += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    by_hand = by_hand / 2 * t * t  # mean over the batch (not over batch x classes), times T^2
    loss, terms = HintonKD(temperature=t, alpha=1.0)(student, labels, teacher)
    assert terms["soft"].item() == pytest.approx(by_hand, rel=1e-5)
    assert loss.item() == pytest.approx(by_hand, rel=1e-5)


def test_alpha_mixes_soft_and_hard_terms():
    student = torch.tensor([[1.0, 2.0, 0.0]])
    teacher = torch.tensor([[2.0, 1.0, 0.0]])
    labels = torch.tensor([0])
    hard_by_hand = -math.log(_softmax([1.0, 2.0, 0.0], 1.0)[0])
    loss, terms = HintonKD(temperature=2.0, alpha=0.25)(student, labels, teacher)
    assert terms["hard"].item() == pytest.approx(hard_by_hand, rel=1e-6)
    assert loss.item() == pytest.approx(0.25 * terms["soft"].item() + 0.75 * hard_by_hand, rel=1e-6)
    only_hard, _ = HintonKD(temperature=2.0, alpha=0.0)(student, labels, teacher)
    assert only_hard.item() == pytest.approx(CrossEntropy()(student, labels)[0].item(), rel=1e-6)


def test_identical_logits_give_no_soft_loss_and_the_t2_factor_keeps_gradients_in_scale():
    x = torch.tensor([[3.0, 1.0, -2.0]])
    assert HintonKD(20.0, 1.0)(x, torch.tensor([0]), x)[1]["soft"].item() == pytest.approx(0.0, abs=1e-7)
    grads = []
    for t in (5.0, 50.0):
        s = torch.tensor([[1.0, 0.0, -1.0]], requires_grad=True)
        HintonKD(t, 1.0)(s, torch.tensor([0]), torch.tensor([[2.0, 0.5, -1.5]]))[0].backward()
        grads.append(s.grad.norm().item())
    # gradients scale as 1/T without the T^2 factor; with it they stay within a small constant
    assert 0.5 < grads[1] / grads[0] < 2.0


def test_registry():
    assert get("kd") is HintonKD and get("ce") is CrossEntropy
    with pytest.raises(Exception, match="unknown distillation method 'dkd'"):
        get("dkd")
