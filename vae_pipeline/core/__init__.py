"""Pure numerical layer: numpy / pandas / torch / scikit-learn only, never Dagster."""
