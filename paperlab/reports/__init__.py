"""Comparison reports: runs (MLflow, through lab.tracking), notes and the template's claims on one page."""
