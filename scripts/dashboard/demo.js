// In-browser demo of vae_pipeline (built into dashboard.html by scripts/build_dashboard.py).
// The numerics below run in the page: a symmetric (Jacobi) eigen-solver gives probabilistic
// PCA, whose maximum-likelihood solution is the top-k principal components (the VAE's
// linear-Gaussian limit). No request leaves the page; plotly.js is inflated from the page itself.
"use strict";

const Num = (() => {
  // ---- decoding -------------------------------------------------------------------------
  function bytes(b64) {
    const s = atob(b64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function int16(b64, scale) {
    const b = bytes(b64);
    const dv = new DataView(b.buffer);
    const out = new Float64Array(b.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = dv.getInt16(2 * i, true) * scale;
    return out;
  }
  function float32(b64) {
    const b = bytes(b64);
    const dv = new DataView(b.buffer);
    const out = new Float64Array(b.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
    return out;
  }

  // ---- matrices: row-major Float64Array with explicit sizes ------------------------------
  function rows(X, n, from, to) {
    return X.subarray(from * n, to * n);
  }
  function colMeans(X, t, n) {
    const m = new Float64Array(n);
    for (let r = 0; r < t; r++) for (let j = 0; j < n; j++) m[j] += X[r * n + j];
    for (let j = 0; j < n; j++) m[j] /= t;
    return m;
  }
  // Cross-product of the centred columns divided by `denom`: the sample covariance.
  function covariance(X, t, n, denom) {
    const m = colMeans(X, t, n);
    const C = new Float64Array(n * n);
    const row = new Float64Array(n);
    for (let r = 0; r < t; r++) {
      for (let j = 0; j < n; j++) row[j] = X[r * n + j] - m[j];
      for (let i = 0; i < n; i++) {
        const ri = row[i];
        for (let j = i; j < n; j++) C[i * n + j] += ri * row[j];
      }
    }
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        C[i * n + j] /= denom;
        C[j * n + i] = C[i * n + j];
      }
    }
    return C;
  }
  // z-scores with the population std (ddof 0) of `fitRows`, applied to `X`.
  function standardiser(Xfit, t, n) {
    const mean = colMeans(Xfit, t, n);
    const sd = new Float64Array(n);
    for (let r = 0; r < t; r++)
      for (let j = 0; j < n; j++) sd[j] += (Xfit[r * n + j] - mean[j]) ** 2;
    for (let j = 0; j < n; j++) sd[j] = Math.sqrt(sd[j] / t);
    return (X, tt) => {
      const Z = new Float64Array(tt * n);
      for (let r = 0; r < tt; r++)
        for (let j = 0; j < n; j++) Z[r * n + j] = (X[r * n + j] - mean[j]) / sd[j];
      return Z;
    };
  }

  // Symmetric eigen-decomposition by cyclic Jacobi rotations. Returns eigenvalues in
  // descending order and the eigenvectors as columns of a row-major n x n matrix, each
  // signed so its entries sum to >= 0 (PC1 = +market, like the stored latents' convention).
  function eigSym(A, n) {
    const a = Float64Array.from(A);
    const v = new Float64Array(n * n);
    for (let i = 0; i < n; i++) v[i * n + i] = 1;
    let scale = 0;
    for (let i = 0; i < n * n; i++) scale += a[i] * a[i];
    for (let sweep = 0; sweep < 100; sweep++) {
      let off = 0;
      for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
      if (off <= 1e-30 * scale) break;
      for (let p = 0; p < n; p++) {
        for (let q = p + 1; q < n; q++) {
          const apq = a[p * n + q];
          if (apq === 0) continue;
          const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
          const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
          const c = 1 / Math.sqrt(t * t + 1);
          const s = t * c;
          for (let k = 0; k < n; k++) {
            const akp = a[k * n + p], akq = a[k * n + q];
            a[k * n + p] = c * akp - s * akq;
            a[k * n + q] = s * akp + c * akq;
          }
          for (let k = 0; k < n; k++) {
            const apk = a[p * n + k], aqk = a[q * n + k];
            a[p * n + k] = c * apk - s * aqk;
            a[q * n + k] = s * apk + c * aqk;
          }
          for (let k = 0; k < n; k++) {
            const vkp = v[k * n + p], vkq = v[k * n + q];
            v[k * n + p] = c * vkp - s * vkq;
            v[k * n + q] = s * vkp + c * vkq;
          }
        }
      }
    }
    const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
    const values = new Float64Array(n);
    const vectors = new Float64Array(n * n);
    order.forEach((src, dst) => {
      values[dst] = a[src * n + src];
      let sum = 0;
      for (let k = 0; k < n; k++) sum += v[k * n + src];
      const sign = sum < 0 ? -1 : 1;
      for (let k = 0; k < n; k++) vectors[k * n + dst] = sign * v[k * n + src];
    });
    return { values, vectors };
  }

  // Solve S x = b for symmetric positive-definite S (Cholesky).
  function cholSolve(S, n, b) {
    const L = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let sum = S[i * n + j];
        for (let k = 0; k < j; k++) sum -= L[i * n + k] * L[j * n + k];
        if (i === j) {
          if (sum <= 0) throw new Error("covariance is not positive definite");
          L[i * n + i] = Math.sqrt(sum);
        } else L[i * n + j] = sum / L[j * n + j];
      }
    }
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let sum = b[i];
      for (let k = 0; k < i; k++) sum -= L[i * n + k] * y[k];
      y[i] = sum / L[i * n + i];
    }
    const x = new Float64Array(n);
    for (let i = n - 1; i >= 0; i--) {
      let sum = y[i];
      for (let k = i + 1; k < n; k++) sum -= L[k * n + i] * x[k];
      x[i] = sum / L[i * n + i];
    }
    return x;
  }
  function minvarWeights(S, n) {
    const w = cholSolve(S, n, new Float64Array(n).fill(1));
    const total = w.reduce((s, x) => s + x, 0);
    return w.map((x) => x / total);
  }

  // ---- covariance estimators (the pipeline's conventions) --------------------------------
  function sampleCov(X, t, n) {
    return covariance(X, t, n, t - 1);
  }
  // Ledoit-Wolf (2004) shrinkage to mu*I, ddof 0 on centred data (= sklearn's LedoitWolf).
  function ledoitWolf(X, t, n) {
    const emp = covariance(X, t, n, t);
    const m = colMeans(X, t, n);
    let trace = 0, delta_ = 0, beta_ = 0;
    for (let i = 0; i < n; i++) trace += emp[i * n + i];
    for (let i = 0; i < n * n; i++) delta_ += emp[i] * emp[i];
    for (let r = 0; r < t; r++) {
      let sq = 0;
      for (let j = 0; j < n; j++) sq += (X[r * n + j] - m[j]) ** 2;
      beta_ += sq * sq;
    }
    const mu = trace / n;
    let beta = (beta_ / t - delta_) / (n * t);
    const delta = (delta_ - 2 * mu * trace + n * mu * mu) / n;
    beta = Math.min(beta, delta);
    const shrink = beta === 0 ? 0 : beta / delta;
    const out = emp.map((x) => x * (1 - shrink));
    for (let i = 0; i < n; i++) out[i * n + i] += shrink * mu;
    return out;
  }
  // Correlation matrix of a covariance, and the standard deviations it divided by.
  function correlation(S, n) {
    const sd = Float64Array.from({ length: n }, (_, i) => Math.sqrt(S[i * n + i]));
    return { R: S.map((v, idx) => v / (sd[Math.floor(idx / n)] * sd[idx % n])), sd };
  }
  // PCA(k) + diagonal residual (= the pipeline's "pca" estimator): the top-k eigenvectors of
  // the correlation matrix (PCA of the z-scored panel the VAE sees), scaled back to returns,
  // B B' plus each stock's remaining variance: the VAE covariance's linear limit.
  function pcaCov(S, eig, sd, n, k) {
    const out = new Float64Array(n * n);
    const B = new Float64Array(n * k);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < k; j++) B[i * k + j] = eig.vectors[i * n + j] * Math.sqrt(Math.max(eig.values[j], 0)) * sd[i];
    let meanDiag = 0;
    for (let i = 0; i < n; i++) meanDiag += S[i * n + i] / n;
    for (let i = 0; i < n; i++) {
      for (let l = 0; l < n; l++) {
        let s = 0;
        for (let j = 0; j < k; j++) s += B[i * k + j] * B[l * k + j];
        out[i * n + l] = s;
      }
    }
    for (let i = 0; i < n; i++) out[i * n + i] += Math.max(S[i * n + i] - out[i * n + i], 1e-6 * meanDiag);
    return out;
  }

  // ---- PPCA on a correlation eigen-decomposition -----------------------------------------
  // sigma^2 = mean of the discarded eigenvalues; posterior means E[z|x] = M^-1 W'x with
  // W = U_k (L_k - sigma^2)^1/2 and M = W'W + sigma^2 I = L_k.
  function ppca(eig, n, k) {
    let tail = 0;
    for (let j = k; j < n; j++) tail += eig.values[j];
    const sigma2 = k < n ? tail / (n - k) : 0;
    return { k, sigma2, eig };
  }
  function projections(Z, t, n, eig, k) {
    const P = new Float64Array(t * k); // u_j' z_t
    for (let r = 0; r < t; r++)
      for (let j = 0; j < k; j++) {
        let s = 0;
        for (let i = 0; i < n; i++) s += eig.vectors[i * n + j] * Z[r * n + i];
        P[r * k + j] = s;
      }
    return P;
  }
  // Mean Gaussian log-likelihood per day of z-scored rows under PPCA(k).
  function ppcaLogLik(Z, t, n, model) {
    const { k, sigma2, eig } = model;
    let logdet = (n - k) * Math.log(sigma2);
    for (let j = 0; j < k; j++) logdet += Math.log(eig.values[j]);
    const P = projections(Z, t, n, eig, k);
    let total = 0;
    for (let r = 0; r < t; r++) {
      let norm = 0, quad = 0, proj = 0;
      for (let i = 0; i < n; i++) norm += Z[r * n + i] ** 2;
      for (let j = 0; j < k; j++) {
        const p = P[r * k + j];
        quad += (p * p) / eig.values[j];
        proj += p * p;
      }
      quad += (norm - proj) / sigma2;
      total += -0.5 * (n * Math.log(2 * Math.PI) + logdet + quad);
    }
    return total / t;
  }

  // ---- statistics -------------------------------------------------------------------------
  function corr(x, y) {
    const n = x.length;
    let mx = 0, my = 0;
    for (let i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= n; my /= n;
    let sxy = 0, sxx = 0, syy = 0;
    for (let i = 0; i < n; i++) {
      sxy += (x[i] - mx) * (y[i] - my);
      sxx += (x[i] - mx) ** 2;
      syy += (y[i] - my) ** 2;
    }
    return sxy / Math.sqrt(sxx * syy);
  }
  function std(x, ddof) {
    const n = x.length;
    const m = x.reduce((s, v) => s + v, 0) / n;
    return Math.sqrt(x.reduce((s, v) => s + (v - m) ** 2, 0) / (n - ddof));
  }
  function silhouette(xy, labels) {
    const n = labels.length;
    const d = (i, j) => Math.hypot(xy[i][0] - xy[j][0], xy[i][1] - xy[j][1]);
    const groups = [...new Set(labels)];
    let total = 0;
    for (let i = 0; i < n; i++) {
      const mean = {};
      const count = {};
      groups.forEach((g) => { mean[g] = 0; count[g] = 0; });
      for (let j = 0; j < n; j++) if (j !== i) { mean[labels[j]] += d(i, j); count[labels[j]] += 1; }
      if (count[labels[i]] === 0) continue; // a singleton scores 0
      const a = mean[labels[i]] / count[labels[i]];
      let b = Infinity;
      groups.forEach((g) => { if (g !== labels[i] && count[g]) b = Math.min(b, mean[g] / count[g]); });
      total += (b - a) / Math.max(a, b);
    }
    return total / n;
  }

  return {
    int16, float32, rows, colMeans, covariance, standardiser, eigSym, cholSolve, minvarWeights,
    sampleCov, ledoitWolf, correlation, pcaCov, ppca, projections, ppcaLogLik, corr, std, silhouette,
  };
})();

// ---- the model of the page: everything computed from the embedded panel ------------------
function prepare(D) {
  const N = D.n_names, T = D.n_days, C = D.constants;
  const R = Num.int16(D.returns_i16, D.return_scale);
  const market = Num.int16(D.market_i16, D.return_scale);
  const vol = Num.int16(D.volatility_i16, 1e-2);
  const slope = Num.int16(D.macro_slope_i16, 1e-4);
  const F = Num.int16(D.factors_i16, D.return_scale);
  const nF = D.factor_names.length;
  const dates = [D.first_date];
  let day = new Date(D.first_date + "T00:00:00Z");
  for (const g of D.date_gaps) {
    day = new Date(day.getTime() + Number(g) * 86400000);
    dates.push(day.toISOString().slice(0, 10));
  }
  // Factors, anomalies, embedding: the last fit_days, z-scored on themselves.
  const f0 = T - C.fit_days;
  const Xfit = Num.rows(R, N, f0, T);
  const Zfit = Num.standardiser(Xfit, C.fit_days, N)(Xfit, C.fit_days);
  const eigFit = Num.eigSym(Num.covariance(Zfit, C.fit_days, N, C.fit_days), N);
  // Trade-off: fit on the first train_days, score the rest with the fitted scaler.
  const Xtr = Num.rows(R, N, 0, C.train_days), Xte = Num.rows(R, N, C.train_days, T);
  const scale = Num.standardiser(Xtr, C.train_days, N);
  const Ztr = scale(Xtr, C.train_days), Zte = scale(Xte, T - C.train_days);
  const eigTr = Num.eigSym(Num.covariance(Ztr, C.train_days, N, C.train_days), N);
  const tradeoff = [];
  for (let k = 1; k <= Math.min(C.k_max + 2, N - 1); k++) {
    const model = Num.ppca(eigTr, N, k);
    let fidelity = 0;
    for (let j = 0; j < k; j++) fidelity += eigTr.values[j] / N;
    tradeoff.push({
      k,
      fidelity,
      train: Num.ppcaLogLik(Ztr, C.train_days, N, model),
      test: Num.ppcaLogLik(Zte, T - C.train_days, N, model),
      params: N * k - (k * (k - 1)) / 2 + 1,
    });
  }
  // Min-variance walk-forward: k-independent parts once (sample, Ledoit-Wolf, eigens).
  const oracleW = Num.float32(D.oracle_weights_f32);
  const rebalances = [];
  for (let t = C.mv_window, i = 0; t + C.mv_hold <= T; t += C.mv_hold, i++) {
    const X = Num.rows(R, N, t - C.mv_window, t);
    const S = Num.sampleCov(X, C.mv_window, N);
    const { R: corrS, sd } = Num.correlation(S, N);
    rebalances.push({
      t,
      S,
      sd,
      eig: Num.eigSym(corrS, N),
      weights: {
        "equal weight": new Float64Array(N).fill(1 / N),
        sample: Num.minvarWeights(S, N),
        "Ledoit-Wolf": Num.minvarWeights(Num.ledoitWolf(X, C.mv_window, N), N),
        oracle: oracleW.subarray(i * N, (i + 1) * N),
      },
    });
  }
  return { D, N, T, C, R, market, vol, slope, F, nF, dates, f0, Zfit, eigFit, tradeoff, rebalances };
}

function realised(M, name) {
  const { N, R, C } = M;
  const daily = [];
  const perPeriod = [];
  for (const reb of M.rebalances) {
    const w = reb.weights[name];
    const period = [];
    for (let t = reb.t; t < reb.t + C.mv_hold; t++) {
      let s = 0;
      for (let i = 0; i < N; i++) s += w[i] * R[t * N + i];
      period.push(s);
      daily.push(s);
    }
    perPeriod.push(Num.std(period, 1) * Math.sqrt(252));
  }
  return { vol: Num.std(daily, 1) * Math.sqrt(252), perPeriod };
}

function computeK(M, k) {
  const { N, C, Zfit, eigFit, F, nF, f0 } = M;
  const T = C.fit_days;
  const model = Num.ppca(eigFit, N, k);
  const P = Num.projections(Zfit, T, N, eigFit, k); // u_j' z_t
  let explained = 0;
  for (let j = 0; j < k; j++) explained += eigFit.values[j] / N;
  // Posterior-mean latents and their |corr| with the observables (levels of market, changes
  // of the volatility index and the macro slope).
  const latents = [];
  for (let j = 0; j < k; j++) {
    const f = Math.sqrt(Math.max(eigFit.values[j] - model.sigma2, 0)) / eigFit.values[j];
    latents.push(Float64Array.from({ length: T }, (_, r) => f * P[r * k + j]));
  }
  const seg = (x) => x.subarray(f0, f0 + T);
  const diff = (x) => Float64Array.from({ length: T }, (_, r) => x[f0 + r] - x[f0 + r - 1]);
  const targets = {
    market: seg(M.market),
    "volatility change": diff(M.vol),
    "macro slope change": diff(M.slope),
  };
  const corr = latents.map((z) => Object.fromEntries(Object.entries(targets).map(([n, y]) => [n, Math.abs(Num.corr(z, y))])));
  // Recovery R^2 of each true factor on all k latents: the latents are uncorrelated in the
  // window (principal components), so R^2 with an intercept = the sum of squared correlations.
  const recovery = M.D.factor_names.map((name, f) => {
    const y = Float64Array.from({ length: T }, (_, r) => F[(f0 + r) * nF + f]);
    return { name, r2: Math.min(latents.reduce((s, z) => s + Num.corr(z, y) ** 2, 0), 1) };
  });
  // Reconstruction: z_hat = U_k diag((l - s2) / l) U_k' z (decode the posterior mean).
  const errors = new Float64Array(N);
  const residual = new Float64Array(T * N);
  for (let r = 0; r < T; r++) {
    for (let i = 0; i < N; i++) {
      let zhat = 0;
      for (let j = 0; j < k; j++)
        zhat += eigFit.vectors[i * N + j] * ((eigFit.values[j] - model.sigma2) / eigFit.values[j]) * P[r * k + j];
      const e = Zfit[r * N + i] - zhat;
      residual[r * N + i] = e;
      errors[i] += (e * e) / T;
    }
  }
  const nFlag = Math.min(Math.max(Math.round(C.top_fraction * N), 1), N - 1);
  const order = Array.from({ length: N }, (_, i) => i).sort((a, b) => errors[b] - errors[a] || a - b);
  const flagged = new Set(order.slice(0, nFlag));
  // Embedding: loadings U_k sqrt(l_k), standardised per column, projected on their top-2 PCs.
  const L = [];
  for (let i = 0; i < N; i++) L.push(Array.from({ length: k }, (_, j) => eigFit.vectors[i * N + j] * Math.sqrt(eigFit.values[j])));
  const flatL = Float64Array.from(L.flat());
  const Ls = Num.standardiser(flatL, N, k)(flatL, N);
  let xy;
  if (k === 1) xy = Array.from({ length: N }, (_, i) => [Ls[i], 0]);
  else {
    const e2 = Num.eigSym(Num.covariance(Ls, N, k, N - 1), k);
    const mean = Num.colMeans(Ls, N, k);
    xy = Array.from({ length: N }, (_, i) => [0, 1].map((c) => {
      let s = 0;
      for (let j = 0; j < k; j++) s += (Ls[i * k + j] - mean[j]) * e2.vectors[j * k + c];
      return s;
    }));
  }
  const sectors = M.D.sector_index;
  // Min-variance with PCA(k) + diagonal, the k-dependent estimator.
  for (const reb of M.rebalances) reb.weights[`PPCA k=${k}`] = Num.minvarWeights(Num.pcaCov(reb.S, reb.eig, reb.sd, N, k), N);
  const names = ["oracle", `PPCA k=${k}`, "Ledoit-Wolf", "sample", "equal weight"];
  const minvar = Object.fromEntries(names.map((n) => [n, realised(M, n)]));
  for (const reb of M.rebalances) for (const key of Object.keys(reb.weights)) if (key.startsWith("PPCA") && key !== `PPCA k=${k}`) delete reb.weights[key];
  return {
    k, model, explained, latents, corr, recovery, errors, residual, order, flagged, xy,
    silhouette: Num.silhouette(xy, sectors), minvar, names,
  };
}

// ---- rendering ----------------------------------------------------------------------------
const COLOURS = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#999999", "#66c2a5", "#1b9e77"];
const EST_COLOURS = { oracle: "#111111", "Ledoit-Wolf": "#1f77b4", sample: "#7f7f7f", "equal weight": "#bcbd22" };
const pct = (x, d = 2) => `${(100 * x).toFixed(d)} %`;

function setStat(id, value, text) {
  const el = document.getElementById(id);
  el.dataset.value = String(value);
  el.textContent = text;
}

function table(el, header, rows) {
  el.innerHTML = `<table class="numbers"><thead><tr>${header.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td${c.style ? ` style="${c.style}"` : ""}>${c.text ?? c}</td>`).join("")}</tr>`)
    .join("")}</tbody></table>`;
}
const shade = (v) => ({ text: v.toFixed(2), style: `background: rgba(31,119,180,${(0.85 * v).toFixed(2)}); color: ${v > 0.55 ? "#fff" : "#222"}` });

function renderNumbers(M, R) {
  const { C } = M;
  setStat("stat-explained", R.explained, pct(R.explained));
  setStat("stat-corr-market", R.corr[0].market, R.corr[0].market.toFixed(3));
  setStat("stat-r2-market", R.recovery[0].r2, R.recovery[0].r2.toFixed(3));
  setStat("stat-sigma2", R.model.sigma2, R.model.sigma2.toFixed(3));
  table(document.getElementById("table-corr"), ["|corr|", ...Object.keys(R.corr[0])],
    R.corr.map((c, j) => [`latent ${j + 1}`, ...Object.values(c).map(shade)]));
  table(document.getElementById("table-recovery"), ["true factor", `R<sup>2</sup> on ${R.k} latents`],
    R.recovery.map((r) => [r.name, shade(r.r2)]));
  const best = M.tradeoff.reduce((a, b) => (b.test > a.test ? b : a));
  const atK = M.tradeoff.find((x) => x.k === R.k);
  setStat("stat-best-k", best.k, String(best.k));
  setStat("stat-heldout", atK.test, atK.test.toFixed(2));
  const box = document.getElementById("minvar-stats");
  box.innerHTML = R.names.map((n) => `<div class="stat-box"><div class="label">${n} realised vol</div><span class="stat" id="stat-vol-${n.replace(/[^a-z]/gi, "").toLowerCase()}" data-value="${R.minvar[n].vol}">${pct(R.minvar[n].vol)}</span></div>`).join("");
  const planted = M.D.planted;
  const hits = [...R.flagged].filter((i) => planted[i]).length;
  const nPlanted = planted.filter(Boolean).length;
  setStat("stat-anomaly-hits", hits, `${hits} of ${nPlanted} (${R.flagged.size} flagged)`);
  setStat("stat-silhouette", R.silhouette, R.silhouette.toFixed(3));
  for (const [cls, value] of [["c-fit", C.fit_days], ["c-train", C.train_days], ["c-window", C.mv_window], ["c-hold", C.mv_hold]])
    document.querySelectorAll(`.${cls}`).forEach((el) => { el.textContent = String(value); });
}

function layout(title, extra = {}) {
  return Object.assign({
    title: { text: title, x: 0.02, xanchor: "left", font: { size: 15 } },
    margin: { l: 55, r: 20, t: 50, b: 45 }, height: 380,
    legend: { orientation: "h", y: -0.18 }, template: undefined,
    paper_bgcolor: "#fff", plot_bgcolor: "#fff",
    xaxis: { gridcolor: "#eee" }, yaxis: { gridcolor: "#eee", zerolinecolor: "#ccc" },
  }, extra);
}

function renderCharts(P, M, R) {
  const { C, f0, dates, N } = M;
  const T = C.fit_days;
  const x = dates.slice(f0, f0 + T);
  const cumsum = (arr, sd) => { let s = 0; return Array.from(arr, (v) => (s += v / sd)); };
  const traces = R.latents.map((z, j) => ({ x, y: cumsum(z, Num.std(z, 0)), mode: "lines", name: `latent ${j + 1}`, line: { color: COLOURS[j % COLOURS.length], width: 1.5 } }));
  const mkt = M.market.subarray(f0, f0 + T);
  traces.push({ x, y: cumsum(mkt, Num.std(mkt, 0)), mode: "lines", name: "market", line: { color: "#111", width: 2.5, dash: "dot" } });
  P.react("chart-factors", traces, layout("Cumulative latents vs the market (unit daily sd)"), { displaylogo: false, responsive: true });
  const z1 = R.latents[0];
  const roll = x.map((_, r) => (r < 20 ? null : Num.std(z1.subarray(r - 20, r + 1), 1) * Math.sqrt(252)));
  P.react("chart-volatility", [
    { x, y: roll, mode: "lines", name: "21-day vol of latent 1", line: { color: COLOURS[0] } },
    { x, y: Array.from(M.vol.subarray(f0, f0 + T)), mode: "lines", name: "volatility index", yaxis: "y2", line: { color: "#8c564b" } },
  ], layout("Latent 1's rolling vol tracks the volatility index", { margin: { l: 55, r: 55, t: 50, b: 45 }, yaxis2: { overlaying: "y", side: "right", showgrid: false, title: { text: "volatility index" } }, yaxis: { title: { text: "21-day sd of latent 1 (annualised)" }, gridcolor: "#eee" } }), { displaylogo: false, responsive: true });

  const ks = M.tradeoff.map((t) => t.k);
  P.react("chart-tradeoff", [
    { x: ks, y: M.tradeoff.map((t) => t.test), mode: "lines+markers", name: "held-out log-likelihood / day", line: { color: "#d62728", width: 3 } },
    { x: ks, y: M.tradeoff.map((t) => t.train), mode: "lines+markers", name: "fitting-days log-likelihood / day", line: { color: "#ff9896" } },
    { x: ks, y: M.tradeoff.map((t) => t.fidelity), mode: "lines+markers", name: "variance explained (fidelity)", yaxis: "y2", line: { color: "#1f77b4", dash: "dot" } },
    { x: [R.k], y: [M.tradeoff.find((t) => t.k === R.k).test], mode: "markers", name: `current k = ${R.k}`, marker: { size: 16, symbol: "star", color: "#111" } },
  ], layout("PPCA over k: fidelity rises forever, held-out likelihood peaks", {
    height: 420, margin: { l: 60, r: 70, t: 50, b: 45 }, legend: { orientation: "h", y: -0.28 },
    xaxis: { title: { text: "latent factors k" }, dtick: 1, gridcolor: "#eee" },
    yaxis: { title: { text: "log-likelihood per day" }, gridcolor: "#eee" },
    yaxis2: { overlaying: "y", side: "right", tickformat: ".0%", range: [0, 1], dtick: 0.2, showgrid: false, title: { text: "variance explained" } },
  }), { displaylogo: false, responsive: true });

  const names = R.names;
  const colour = (n) => EST_COLOURS[n] || "#d62728";
  P.react("chart-minvar", [{
    x: names, y: names.map((n) => R.minvar[n].vol), type: "bar", marker: { color: names.map(colour) },
    text: names.map((n) => pct(R.minvar[n].vol)), textposition: "outside", name: "realised vol",
  }], layout(`Realised vol over ${M.rebalances.length} out-of-sample months`, { yaxis: { tickformat: ".1%", gridcolor: "#eee", rangemode: "tozero" }, showlegend: false }), { displaylogo: false, responsive: true });
  const rx = M.rebalances.map((r) => dates[r.t]);
  P.react("chart-minvar-time", names.map((n) => ({
    x: rx, y: R.minvar[n].perPeriod, mode: "lines", name: n, line: { color: colour(n), width: n === "oracle" ? 2.5 : 1.5, dash: n === "oracle" ? "dash" : "solid" },
  })), layout("Realised vol per holding period", { yaxis: { tickformat: ".0%", gridcolor: "#eee" } }), { displaylogo: false, responsive: true });

  const planted = M.D.planted, tickers = M.D.tickers;
  const ord = R.order;
  P.react("chart-anomaly-errors", [{
    x: ord.map((i) => tickers[i]), y: ord.map((i) => R.errors[i]), type: "bar", name: "reconstruction error",
    marker: { color: ord.map((i) => (R.flagged.has(i) ? "#d62728" : "#c7c7c7")), line: { color: ord.map((i) => (planted[i] ? "#111" : "rgba(0,0,0,0)")), width: 2 } },
    hovertemplate: "%{x}: %{y:.3f}<extra></extra>",
  }], layout("Error per stock: red = flagged, black outline = planted", { showlegend: false, xaxis: { tickangle: -90, tickfont: { size: 9 } }, yaxis: { title: { text: "mean squared error (z units)" }, gridcolor: "#eee" } }), { displaylogo: false, responsive: true });
  const top = ord.slice(0, R.flagged.size);
  P.react("chart-anomaly-paths", top.map((i, j) => {
    let s = 0;
    return { x, y: Array.from({ length: T }, (_, r) => (s += R.residual[r * N + i])), mode: "lines", name: `${tickers[i]}${planted[i] ? " (planted)" : ""}`, line: { width: planted[i] ? 2 : 1, dash: planted[i] ? "solid" : "dot", color: COLOURS[j % COLOURS.length] } };
  }), layout("Cumulative reconstruction residual of the flagged names", { legend: { font: { size: 10 } } }), { displaylogo: false, responsive: true });

  const secNames = M.D.sector_names;
  P.react("chart-embedding", secNames.map((s, g) => {
    const idx = M.D.sector_index.map((v, i) => (v === g ? i : -1)).filter((i) => i >= 0);
    return { x: idx.map((i) => R.xy[i][0]), y: idx.map((i) => R.xy[i][1]), text: idx.map((i) => tickers[i]), mode: "markers", name: s, marker: { size: 11, color: COLOURS[g % COLOURS.length] }, hovertemplate: "%{text}<extra>" + s + "</extra>" };
  }), layout(`Loadings on ${R.k} latents in 2-D (silhouette ${R.silhouette.toFixed(2)})`, { height: 460, legend: { orientation: "v" }, xaxis: { title: { text: "dimension 1" }, gridcolor: "#eee" }, yaxis: { title: { text: "dimension 2" }, gridcolor: "#eee" } }), { displaylogo: false, responsive: true });
}

async function loadPlotly() {
  const b64 = document.getElementById("plotly-gz").textContent.trim();
  const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  if (typeof DecompressionStream === "undefined") throw new Error("this browser lacks DecompressionStream (needs Chrome 80+, Firefox 113+ or Safari 16.4+) to unpack plotly.js");
  const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream("gzip"));
  const code = await new Response(stream).text();
  const s = document.createElement("script");
  s.textContent = code;
  document.head.appendChild(s);
  if (!window.Plotly) throw new Error("plotly.js did not load");
  return window.Plotly;
}

async function main() {
  const fail = (err) => {
    document.body.dataset.status = `error: ${err.message}`;
    const box = document.getElementById("error");
    box.style.display = "block";
    box.textContent = `Error: ${err.message}`;
    console.error(err);
  };
  try {
    const D = JSON.parse(document.getElementById("demo-data").textContent);
    const started = performance.now();
    const M = prepare(D);
    document.getElementById("panel-shape").textContent = `${D.n_days} trading days x ${D.n_names} names, ${D.first_date} to ${M.dates[M.dates.length - 1]}`;
    const slider = document.getElementById("k");
    slider.max = String(D.constants.k_max);
    slider.value = String(D.constants.k_default);
    let R = computeK(M, D.constants.k_default);
    renderNumbers(M, R);
    const timing = document.getElementById("timing");
    timing.textContent = `computed in ${(performance.now() - started).toFixed(0)} ms`;
    document.body.dataset.status = "computed";
    const P = await loadPlotly();
    renderCharts(P, M, R);
    slider.addEventListener("input", () => {
      const t0 = performance.now();
      const k = Number(slider.value);
      document.getElementById("k-value").textContent = String(k);
      R = computeK(M, k);
      renderNumbers(M, R);
      renderCharts(P, M, R);
      timing.textContent = `k = ${k}: recomputed in ${(performance.now() - t0).toFixed(0)} ms`;
    });
    document.body.dataset.status = "ready";
  } catch (err) {
    fail(err);
  }
}

if (typeof module !== "undefined" && module.exports) module.exports = { Num, prepare, computeK, realised };
else main();
