"""The churn example's service (stdlib HTTP; the BentoML service comes with the model work)."""
