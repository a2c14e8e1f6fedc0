"""The CUDA path: ``device="auto"`` trains on the GPU where one exists (skipped without CUDA).

The rest of the suite runs on CPU and passes without CUDA; these run on a machine with one
(``pytest -m gpu``, or plain ``pytest``: they are not excluded by default, only skipped).
"""

import numpy as np
import pytest
import torch

from vae_pipeline.core.model import resolve_device, vae_loss
from vae_pipeline.core.synthetic import generate_panel
from vae_pipeline.core.training import TrainConfig, _LinearDecoderLoss, train_vae

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available"),
]


def test_auto_resolves_to_cuda_and_trains_there():
    assert resolve_device("auto").type == "cuda"
    panel = generate_panel(n_days=504, n_names=300, seed=42).returns
    labels = (np.arange(len(panel)) // 50) % 2
    for conditions in (None, labels):
        res = train_vae(panel, TrainConfig(epochs=100, device="auto"), conditions=conditions)
        assert res.device.startswith("cuda")
        assert next(res.model.parameters()).device.type == "cpu"  # handed back on CPU
        assert res.history["total"].iloc[-1] < 0.8 * res.history["total"].iloc[0]


def test_cuda_fit_matches_the_cpu_fit():
    panel = generate_panel(n_days=504, n_names=100, seed=42).returns
    cpu = train_vae(panel, TrainConfig(epochs=100, device="cpu"))
    gpu = train_vae(panel, TrainConfig(epochs=100, device="cuda"))
    # different kernels and noise streams: same optimum, not the same bits
    assert gpu.history["total"].iloc[-1] == pytest.approx(cpu.history["total"].iloc[-1], rel=0.05)


def test_linear_decoder_loss_on_cuda_equals_the_generic_loss():
    from vae_pipeline.core.model import VAE

    torch.manual_seed(0)
    model = VAE(500, 4, 64).cuda().train()
    x = torch.randn(504, 500, device="cuda")
    xhat, mu, logvar = model(x, generator=torch.Generator(device="cuda").manual_seed(1))
    slow = vae_loss(x, xhat, mu, logvar, 1.0)[0]
    fast = _LinearDecoderLoss(model, x).loss(
        model, None, torch.Generator(device="cuda").manual_seed(1), 1.0
    )[0]
    assert float(fast) == pytest.approx(float(slow), rel=1e-4)


def test_a_partition_materialises_with_the_model_trained_on_cuda(tmp_path):
    import duckdb
    from dagster import DagsterInstance

    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline.pipeline.runner import materialise_day
    from vae_pipeline_tests.conftest import DAY, tiny_settings

    settings = tiny_settings(tmp_path / "gpu.duckdb", device="auto")
    results = materialise_day(
        build_definitions(settings), DAY, settings, DagsterInstance.ephemeral()
    )
    assert all(r.success for r in results)
    with duckdb.connect(str(settings.storage.db_path), read_only=True) as con:
        devices = {r[0] for r in con.execute("select device from main.trained_vae").fetchall()}
    assert devices and all(d.startswith("cuda") for d in devices)
