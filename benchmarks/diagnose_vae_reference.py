"""Why the reference VAE ("vae_reference": k = 4, Adam lr 3e-2, 300 epochs, fixed noise, Monte-Carlo
prior decode) misses its own linear limit on real windows: decoded market eigenvalue vs the
sample's and FA(4)'s, the loss still falling at epoch 300, the aggregated posterior variance of
the latents (1 at the optimum), for 300 / 1000 / 3000 epochs on a calm and a crash window.

    .venv/bin/python benchmarks/diagnose_vae_reference.py   # reads ../shared/data/real/
"""
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vae_pipeline.core.covariance import FactorAnalysisCovariance, VAECovariance

torch.set_num_threads(1)

DATA = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / 'real'
p = pd.read_csv(DATA / 'sp500_2015_2020_prices.csv.gz', index_col=0, parse_dates=True)
r = np.log(p).diff().iloc[1:]
def top(c, k=1): return np.linalg.eigvalsh(c)[::-1][:k]
for end in ['2017-12-29', '2020-04-30']:
    w = r.loc[:end].iloc[-504:]
    S = np.cov(w.values, rowvar=False)
    sd = np.sqrt(np.diag(S))
    print('window', w.index[0].date(), end, 'sample top eig (ret units*1e4)', top(S,4)*1e4, 'corr top', top(S/np.outer(sd,sd),2))
    fa = FactorAnalysisCovariance(4).fit(w)
    print('  FA4 cov top', top(fa.covariance_,4)*1e4, 'BB top', top(fa.loadings_@fa.loadings_.T,1)*1e4)
    for ep, lr in [(300, 3e-2), (1000, 3e-2), (3000,3e-2)]:
        t0=time.time()
        v = VAECovariance(epochs=ep, lr=lr).fit(w)
        h = v.result_.history
        res = v.result_
        W = res.model.decoder.weight.detach().double().numpy()
        sc = res.standardiser.scale_
        WW = (W*sc[:,None]) @ (W*sc[:,None]).T
        mu = res.encode_mean(w)
        x = torch.from_numpy(res.standardiser.transform(w))
        with torch.no_grad():
            _, lv = res.model.encode(x)
        aggvar = mu.var(0) + np.exp(lv.numpy()).mean(0)
        tot = h.total.values
        print(f'  vae ep{ep}: {time.time()-t0:.1f}s loss@{ep//2}={tot[ep//2-1]:.2f} @{ep-50}={tot[-51]:.3f} @{ep}={tot[-1]:.3f} (mean last 20 {tot[-20:].mean():.3f} vs prev 20 {tot[-40:-20].mean():.3f})')
        print('     MC sys top', top(v.systematic_,4)*1e4, ' WW top', top(WW,4)*1e4, ' cov top', top(v.covariance_,1)*1e4, ' agg post var', np.round(aggvar,3), ' idio mean', np.diag(v.idiosyncratic_).mean()*1e4, 'FA psi mean', fa.idiosyncratic_var_.mean()*1e4)
