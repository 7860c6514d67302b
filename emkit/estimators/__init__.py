"""scikit-learn estimators: thin classes over the EM driver and the models."""
