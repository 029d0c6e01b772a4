"""paperlab: a paper library, distillation templates, a tracked trainer and reports."""

__version__ = "0.1.0"
