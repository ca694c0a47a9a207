"""Conda environments: environment.yml locked per platform into conda-lock.yml, installed by hash."""

CONDA_LOCK_FILE = "conda-lock.yml"
