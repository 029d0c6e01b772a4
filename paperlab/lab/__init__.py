"""Experiments: templates, data, nets, distillers, the trainer, tracking (the only MLflow user)."""
