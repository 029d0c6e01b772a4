"""The bias shift of Hinton et al. 2015, section 3: a student whose transfer set lacked some classes ranks
them too low; adding a constant to those classes' logits (the output bias) restores them. The paper picked
its shift (+3.5 for the 3s) on the test set; we choose ours on the validation split and log the paper's
value's test result beside it, never choosing on test."""

from __future__ import annotations

import torch

GRID = [round(-10 + 0.1 * i, 1) for i in range(201)]  # -10.0 ... +10.0


def shifted(logits: torch.Tensor, classes: list[int], shift: float) -> torch.Tensor:
    out = logits.clone()
    out[:, classes] += shift
    return out


def errors(logits: torch.Tensor, y: torch.Tensor, classes: list[int] | None = None, shift: float = 0.0) -> int:
    predicted = (shifted(logits, classes, shift) if classes else logits).argmax(1)
    return int((predicted != y).sum())


def choose(logits: torch.Tensor, y: torch.Tensor, classes: list[int], grid: list[float] = GRID) -> float:
    """The shift with the fewest errors on (validation) logits; ties go to the smallest |shift|."""
    return min(grid, key=lambda s: (errors(logits, y, classes, s), abs(s)))


def on_classes(logits: torch.Tensor, y: torch.Tensor, classes: list[int], shift: float = 0.0) -> int:
    """Errors among the examples whose label is one of `classes`."""
    mask = torch.isin(y, torch.tensor(classes, device=y.device))
    return errors(logits[mask], y[mask], classes, shift)


def measure(val_logits: torch.Tensor, y_val: torch.Tensor, test_logits: torch.Tensor, y_test: torch.Tensor,
            classes: list[int], paper_shift: float | None) -> dict[str, float]:
    """The shift chosen on validation and the test errors before and after it, overall and on `classes`;
    the same for the paper's shift where there is one."""
    chosen = choose(val_logits, y_val, classes)
    out = {"bias_shift": chosen, "test_error_unshifted": errors(test_logits, y_test),
           "test_error_on_shifted_classes_unshifted": on_classes(test_logits, y_test, classes),
           "test_error_shifted": errors(test_logits, y_test, classes, chosen),
           "test_error_on_shifted_classes": on_classes(test_logits, y_test, classes, chosen)}
    if paper_shift is not None:
        out["test_error_paper_shift"] = errors(test_logits, y_test, classes, paper_shift)
        out["test_error_on_shifted_classes_paper_shift"] = on_classes(test_logits, y_test, classes, paper_shift)
    return out


def describe(stage: str, classes: list[int], paper_shift: float | None, m: dict[str, float]) -> str:
    line = (f"{stage}: bias of classes {classes} shifted by {m['bias_shift']:+.1f} (chosen on the validation "
            f"split): test errors {m['test_error_unshifted']} -> {m['test_error_shifted']}, on those classes "
            f"{m['test_error_on_shifted_classes_unshifted']} -> {m['test_error_on_shifted_classes']}")
    if paper_shift is not None:
        line += (f"; with the paper's {paper_shift:+g}: {m['test_error_paper_shift']} "
                 f"({m['test_error_on_shifted_classes_paper_shift']} on those classes)")
    return line
