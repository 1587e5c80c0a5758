"""The callbacks inside the real frameworks: a few CPU steps of a tiny model each.

Skipped where the framework is not installed (the fakes in test_monitor_integrations.py cover
the protocol everywhere); the test extra installs both so CI runs these.
"""

import pytest

import scaleguard.monitor as sgm
from scaleguard.monitor import DuckDBStore


def _data(torch, n=32):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=generator)
    return x, x.sum(dim=1, keepdim=True)


def test_hugging_face_trainer_logs_through_the_callback(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 1)

        def forward(self, x, labels=None):
            out = self.linear(x)
            return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}

    x, y = _data(torch)
    dataset = [{"x": x[i], "labels": y[i]} for i in range(len(x))]
    store = DuckDBStore(":memory:")
    run = sgm.start("hf-tiny", store=store, flush_every=None)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=6, logging_steps=1, per_device_train_batch_size=8,
        report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True, learning_rate=0.05)
    trainer = transformers.Trainer(model=Tiny(), args=args, train_dataset=dataset,
                                   callbacks=[sgm.hf_callback(run)])
    trainer.train()
    assert run.status == "finished"
    loss = store.series(run.run_id, "loss")
    assert loss.steps.tolist() == [1, 2, 3, 4, 5, 6]
    assert "grad_norm" in store.metrics(run.run_id)


def test_lightning_trainer_logs_through_the_callback():
    torch = pytest.importorskip("torch")
    pl = pytest.importorskip("lightning.pytorch")

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.linear(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    x, y = _data(torch)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    store = DuckDBStore(":memory:")
    run = sgm.start("pl-tiny", store=store, flush_every=None)
    trainer = pl.Trainer(max_steps=5, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[sgm.lightning_callback(run)])
    trainer.fit(Tiny(), loader)
    assert run.status == "finished"
    assert store.series(run.run_id, "train_loss").steps.tolist() == [1, 2, 3, 4, 5]
