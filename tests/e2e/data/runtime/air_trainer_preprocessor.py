"""A Ray 2.4 TorchTrainer with preprocessor=: the trainer scaled "x" before training; Train V2 has no
such argument. Each worker checks the largest |x| it is fed: about 1.7 once scaled, 31 raw."""
import ray
from ray.air import session
from ray.air.config import ScalingConfig
from ray.data.preprocessors import StandardScaler
from ray.train.torch import TorchTrainer


def train_loop_per_worker(config):
    shard = session.get_dataset_shard("train")
    largest, rows = 0.0, 0
    for batch in shard.iter_batches(batch_size=8):
        largest = max(largest, float(abs(batch["x"]).max()))
        rows += len(batch["x"])
    if not (rows and 0 < largest < 2):
        raise AssertionError(f"the workers were not fed the scaled dataset: {rows} rows, largest |x| {largest}")
    session.report({"x_max_abs": largest, "rows": rows})


ds = ray.data.from_items([{"x": float(i)} for i in range(32)])
trainer = TorchTrainer(
    train_loop_per_worker,
    scaling_config=ScalingConfig(num_workers=2),
    datasets={"train": ds},
    preprocessor=StandardScaler(columns=["x"]),
)
result = trainer.fit()
