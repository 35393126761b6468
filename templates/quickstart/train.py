"""Train the demo sentiment model and register one checkpoint per epoch.

Written by `dvcckpt quickstart`; shows what a training loop adds to use dvcckpt.
"""

import argparse
import subprocess
from pathlib import Path

from ruamel.yaml import YAML

import dvcckpt
from dvcckpt.setup import demo

parser = argparse.ArgumentParser()
parser.add_argument("--params", default="params.yaml")
args = parser.parse_args()
params = YAML(typ="safe").load(Path(args.params))

for result in demo.train(epochs=params["epochs"], seed=params["seed"], lr=params["lr"]):
    path = Path(f"models/sentiment/epoch-{result.epoch:02d}.npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    demo.save_weights(path, result.weights)
    card = dvcckpt.save(
        path,
        model="sentiment",
        step=result.step,
        epoch=result.epoch,
        phase="train",
        kind="weights",
        metrics=result.metrics,
        params={**demo.hyperparameters(), **params},
        run={"task": "tweets", "hypothesis": "bag-of-words is a usable baseline"},
        data={
            "dataset": "tweets-demo",
            "version": "1",
            "splits": {
                "train": "data/tweets_train.csv",
                "dev": "data/tweets_dev.csv",
                "test": "data/tweets_test.csv",
            },
        },
        seeds={"seed": params["seed"], "deterministic": True},
        resources={
            "latency_ms_p50": result.latency_ms_p50,
            "latency_ms_p95": result.latency_ms_p95,
        },
        tags=["quickstart"],
        config_file=args.params,
    )
    # One commit per checkpoint gives `git log` (and dvcckpt's history) a story to show.
    subprocess.run(["git", "commit", "--quiet", "-m", f"Checkpoint {card.name}"], check=True)
    print(f"epoch {result.epoch}: dev macro_f1 {result.metrics['dev']['macro_f1']} -> {card.name}")
