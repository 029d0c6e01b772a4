"""The paper library: papers, notes, venues, search and BibTeX. Never imports torch or mlflow."""
