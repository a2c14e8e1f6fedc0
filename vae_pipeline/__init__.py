"""vae_pipeline: daily VAE factor refits as a Dagster asset graph (see docs/architecture.md)."""

import os

# torch's OpenMP threads spin while they wait for work by default. On a shared 2-core
# machine (Dagster, DuckDB, another run) a spinning thread steals the core its partner
# needs, and a 2-thread VAE fit slows 5-10x; passive waiting costs little when idle.
# Read once, when torch loads its OpenMP runtime, so it must be set before `import torch`.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
