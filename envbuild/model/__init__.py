"""Models: MLflow resolution for the lock, BentoML import and build, promotion and rollback.

mlflow and bentoml are imported only inside the functions that need them.
"""
