"""A trained model as one storable row and back: weights as bytes, the rest as JSON.

Weights are a ``torch.save``'d state dict loaded with ``weights_only=True`` (never
pickle), so a stored model cannot run code when it is read back.
"""

from __future__ import annotations

import json
from io import StringIO

import pandas as pd

from vae_pipeline.core.model import model_from_bytes, model_to_bytes
from vae_pipeline.core.standardise import Standardiser
from vae_pipeline.core.training import TrainConfig, TrainResult


def result_to_record(result: TrainResult) -> dict:
    """The fields of one stored model (weights, config, scaler, history, summary)."""
    history = result.history
    return {
        "model_config": json.dumps(result.model.config()),
        "train_config": json.dumps(result.config.to_dict()),
        "standardiser": json.dumps(result.standardiser.to_dict()),
        "weights": model_to_bytes(result.model),
        "history": history.to_json(orient="split", index=False),
        "epochs_run": int(len(history)),
        "first_loss": float(history["total"].iloc[0]),
        "final_loss": float(history["total"].iloc[-1]),
        "final_recon": float(history["recon"].iloc[-1]),
        "final_kl": float(history["kl"].iloc[-1]),
        "seconds": float(result.seconds),
        "device": str(result.device),
        "n_conditions": int(result.n_conditions),
    }


def record_to_result(record: dict | pd.Series) -> TrainResult:
    """Rebuild a :class:`TrainResult` from :func:`result_to_record`'s fields."""
    model = model_from_bytes(bytes(record["weights"]), json.loads(record["model_config"]))
    model.eval()
    return TrainResult(
        model=model,
        standardiser=Standardiser.from_dict(json.loads(record["standardiser"])),
        history=pd.read_json(StringIO(record["history"]), orient="split"),
        config=TrainConfig(**json.loads(record["train_config"])),
        seconds=float(record["seconds"]),
        device=str(record["device"]),
        n_conditions=int(record["n_conditions"]),
    )
