"""Stage 3 of the daily refit: a decision scored on the returns of the days it was held."""

from __future__ import annotations

import pandas as pd

from vae_pipeline.core.minvar import annualised_vol


def score_decision(weights: pd.DataFrame, returns: pd.DataFrame) -> pd.DataFrame:
    """Realised annualised vol of each estimator's weights (a decision frame) over the
    holding-period returns, beside the vol it predicted. A name missing a held day earns 0
    that day: the weights are held as decided, not renormalised with hindsight."""
    rows = []
    for name, w in weights.groupby("estimator", sort=False):
        held = returns.reindex(columns=w["ticker"].tolist()).fillna(0.0)
        daily = held.to_numpy() @ w["weight"].to_numpy()
        rows.append(
            {
                "estimator": name,
                "realised_vol": annualised_vol(daily),
                "predicted_vol": float(w["predicted_vol"].iloc[0]),
                "n_days": len(daily),
            }
        )
    return pd.DataFrame(rows)
