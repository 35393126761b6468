"""`dvcckpt add` against real git and DVC repositories."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from dvcckpt.cards import card
from dvcckpt.core import naming
from tests.conftest import git, write_checkpoint


def load(path: Path) -> dict:
    return card.read(path).data


def test_add_file_writes_dvc_pointer_card_and_stages_them(repo: Path, cli) -> None:
    ckpt = write_checkpoint(repo / "models/sentiment/step-000300.pt", size=50_000)
    result = cli("add", str(ckpt.relative_to(repo)), "-p", "lr=1e-4", "-m", "dev.macro_f1=0.84")
    assert result.code == 0, result.err
    data = load(repo / "models/sentiment/step-000300.pt.ckpt.yaml")
    assert f"registered sentiment-train-full-{data['run']['id']}-step000300" in result.out
    pointer = yaml.safe_load((repo / "models/sentiment/step-000300.pt.dvc").read_text())["outs"][0]
    meta = data["checkpoint"]
    assert meta["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert meta["dvc"]["md5"] == pointer["md5"] == hashlib.md5(ckpt.read_bytes()).hexdigest()
    assert meta["size"] == meta["dvc"]["size"] == 50_000
    assert (meta["path"], meta["format"], meta["step"]) == (
        "models/sentiment/step-000300.pt",
        "file",
        300,
    )
    assert data["code"]["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert data["code"]["dirty"] is False
    assert data["checkpoint"]["created_by"] == {"name": "Ada Trainer", "email": "ada@example.com"}
    assert data["params"] == {"lr": 0.0001}
    assert data["metrics"] == {"dev": {"macro_f1": 0.84}}
    assert data["env"]["python"] and len(data["env"]["packages_sha256"]) == 64
    assert data["env"]["gpus"] == [] and data["env"]["cuda"] is None

    git(repo, "check-ignore", "-q", "models/sentiment/step-000300.pt")  # data is git-ignored
    staged = set(git(repo, "diff", "--cached", "--name-only").split())
    assert staged == {
        "models/sentiment/.gitignore",
        "models/sentiment/step-000300.pt.dvc",
        "models/sentiment/step-000300.pt.ckpt.yaml",
    }
    assert (repo / ".dvc/cache/files/md5" / pointer["md5"][:2] / pointer["md5"][2:]).is_file()


def test_card_name_parses_back_into_its_fields(repo: Path, cli) -> None:
    write_checkpoint(repo / "ckpts/ema.bin")
    result = cli(
        "add",
        "ckpts/ema.bin",
        "--model",
        "ner",
        "--phase",
        "finetune",
        "--kind",
        "ema",
        "--step",
        "1200",
        "--epoch",
        "2.5",
    )
    assert result.code == 0, result.err
    data = load(repo / "ckpts/ema.bin.ckpt.yaml")
    run_id = data["run"]["id"]
    assert data["name"] == f"ner-finetune-ema-{run_id}-step001200"
    fields = naming.parse(naming.DEFAULT_CHECKPOINT_PATTERN, data["name"])
    assert fields == {
        "model": "ner",
        "phase": "finetune",
        "kind": "ema",
        "run_id": run_id,
        "step": 1200,
    }
    assert data["checkpoint"]["epoch"] == 2.5


def test_directory_checkpoint_is_hashed_through_a_sorted_manifest(repo: Path, cli) -> None:
    folder = repo / "runs/ner/checkpoint-500"
    write_checkpoint(folder / "model.safetensors", size=30_000)
    write_checkpoint(folder / "config.json", size=300, seed=1)
    write_checkpoint(folder / "tokenizer/vocab.txt", size=700, seed=2)
    result = cli("add", "runs/ner/checkpoint-500/", "--phase", "finetune")
    assert result.code == 0, result.err

    data = load(repo / "runs/ner/checkpoint-500.ckpt.yaml")
    meta = data["checkpoint"]
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    manifest = "".join(
        f"{hashlib.sha256((folder / f).read_bytes()).hexdigest()}  {f}\n" for f in files
    )
    assert meta["sha256"] == hashlib.sha256(manifest.encode()).hexdigest()
    assert (meta["format"], meta["files"], meta["size"]) == ("directory", 3, 31_000)
    assert meta["step"] == 500  # inferred from the Hugging Face folder name
    assert meta["dvc"]["md5"].endswith(".dir") and meta["dvc"]["nfiles"] == 3
    assert data["name"] == f"ner-finetune-full-{data['run']['id']}-step000500"
    git(repo, "check-ignore", "-q", "runs/ner/checkpoint-500")


def test_seed_template_run_record_imports_and_validates(repo: Path, cli) -> None:
    record = Path(__file__).parent / "data/seed003_run.json"
    write_checkpoint(repo / "models/sentiment/weights.pt")
    (repo / "models/sentiment/tokenizer.json").write_text('{"vocab": {}}')
    result = cli("add", "models/sentiment/weights.pt", "--from", str(record), "--step", "300")
    assert result.code == 0, result.err

    data = load(repo / "models/sentiment/weights.pt.ckpt.yaml")
    source = json.loads(record.read_text())
    assert data["run"] == {
        "name": source["run_name"],
        "task": "text_classification",
        "id": naming.derived_run_id(source["run_name"]),  # the record has no run_id
    }
    assert data["data"]["dataset"] == "tweets_v1"
    assert data["data"]["splits"] == {
        "train": {"hash": "hashA"},
        "dev": {"hash": "hashB"},
        "test": {"hash": "hashC"},
    }
    assert data["code"] == {"repo": "nlp-project", "commit": "abc1234"}
    assert data["env"] == {
        "python": "3.11",
        "libraries": {"transformers": "4.46.0", "torch": "2.3.0"},
        "cuda": "12.x",
    }
    assert data["params"] == source["params"]
    assert data["seeds"] == {"seed": 42}
    assert data["metrics"] == {"dev": source["metrics"]["dev"]}
    assert data["resources"] == {"latency_ms_p95": 110}
    assert [a["path"] for a in data["artifacts"]] == [
        "models/sentiment/weights.pt",
        "models/sentiment/tokenizer.json",
        "confusion_matrix.png",
        "errors_dev.jsonl",
    ]
    tokenizer = data["artifacts"][1]
    assert tokenizer["sha256"] == hashlib.sha256(b'{"vocab": {}}').hexdigest()
    assert data["tags"] == ["baseline", "tweets", "english"]
    assert data["notes"] == source["notes"]
    fields = naming.parse(naming.DEFAULT_RUN_PATTERN, data["run"]["name"])
    assert fields is not None and fields["keyparam"] == "lr1e-4"


def test_params_metrics_data_seeds_parents_from_options_and_files(repo: Path, cli) -> None:
    (repo / "data").mkdir()
    (repo / "data/train.csv").write_text("text,label\nhello,pos\n")
    (repo / "params.yaml").write_text("optimizer:\n  name: adamw\n  betas: [0.9, 0.999]\n")
    (repo / "metrics.json").write_text(
        json.dumps(
            {
                "step": 40,
                "train": {"loss": 0.31},
                "eval": {
                    "accuracy": 0.9,
                    "f1": {"value": 0.86, "ci": [0.84, 0.88], "method": "bootstrap"},
                },
            }
        )
    )
    write_checkpoint(repo / "m/base.pt", seed=3)
    assert cli("add", "m/base.pt", "--model", "m", "--step", "10", "--phase", "pretrain").code == 0
    base_name = load(repo / "m/base.pt.ckpt.yaml")["name"]
    write_checkpoint(repo / "m/ft.pt", seed=4)
    result = cli(
        "add",
        "m/ft.pt",
        "--model",
        "m",
        "--phase",
        "finetune",
        "--params",
        "params.yaml",
        "-p",
        "lr=3e-5",
        "-p",
        "optimizer.warmup=100",
        "--metrics",
        "metrics.json",
        "-m",
        "test.class_f1.neg=0.7",
        "--data",
        "tweets=v2",
        "--split",
        "train=data/train.csv",
        "--split",
        "test=sha256:abc",
        "--seed",
        "13",
        "--seed",
        "data_shuffle=7",
        "--deterministic",
        "--parent",
        f"finetuned_from={base_name}",
        "--tag",
        "ablation",
        "--notes",
        "lower lr",
        "--config",
        "params.yaml",
        "--script",
        "train.py",
        "--command",
        "python train.py --lr 3e-5 --hf-token hf_abc",
    )
    assert result.code == 0, result.err
    data = load(repo / "m/ft.pt.ckpt.yaml")
    assert data["checkpoint"]["step"] == 40  # from dvclive's metrics.json
    assert data["params"] == {
        "optimizer": {"name": "adamw", "betas": [0.9, 0.999], "warmup": 100},
        "lr": 3e-05,
    }
    assert data["metrics"]["eval"]["f1"] == {
        "value": 0.86,
        "ci": [0.84, 0.88],
        "method": "bootstrap",
    }
    assert data["metrics"]["test"] == {"class_f1": {"neg": 0.7}}
    train_hash = hashlib.sha256((repo / "data/train.csv").read_bytes()).hexdigest()
    assert data["data"]["splits"]["train"] == {
        "hash": f"sha256:{train_hash}",
        "path": "data/train.csv",
    }
    assert data["data"]["splits"]["test"] == {"hash": "sha256:abc"}
    assert data["seeds"] == {"seed": 13, "data_shuffle": 7, "deterministic": True}
    base = load(repo / "m/base.pt.ckpt.yaml")
    assert data["parents"] == [
        {
            "relation": "finetuned_from",
            "name": base["name"],
            "path": "m/base.pt",
            "sha256": base["checkpoint"]["sha256"],
        }
    ]
    assert data["code"]["config_file"] == "params.yaml"
    assert (
        data["code"]["config_sha256"]
        == hashlib.sha256((repo / "params.yaml").read_bytes()).hexdigest()
    )
    assert data["code"]["command"] == "python train.py --lr 3e-5 --hf-token '***'"


def test_dirty_flag_reflects_uncommitted_code(repo: Path, cli) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    write_checkpoint(repo / "m/a.pt")
    assert cli("add", "m/a.pt", "--step", "1").code == 0
    assert load(repo / "m/a.pt.ckpt.yaml")["code"]["dirty"] is True


def test_secrets_never_reach_the_card(repo: Path, cli, monkeypatch) -> None:
    secret = "hf_Zq8sUPERsecretTOKENvalue42"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret + "aws")
    git(repo, "remote", "add", "origin", f"https://ada:{secret}@github.com/org/nlp.git")
    write_checkpoint(repo / "m/a.pt")
    result = cli("add", "m/a.pt", "--step", "1", "--command", f"python train.py --api-key={secret}")
    assert result.code == 0, result.err
    text = (repo / "m/a.pt.ckpt.yaml").read_text()
    assert secret not in text
    data = load(repo / "m/a.pt.ckpt.yaml")
    assert data["code"]["repo"] == "https://github.com/org/nlp.git"
    assert data["code"]["command"] == "python train.py '--api-key=***'"


def test_existing_card_is_not_overwritten_without_force(repo: Path, cli) -> None:
    write_checkpoint(repo / "m/a.pt")
    assert cli("add", "m/a.pt", "--step", "1").code == 0
    before = (repo / "m/a.pt.ckpt.yaml").read_text()
    again = cli("add", "m/a.pt", "--step", "2")
    assert again.code == 4 and "already exists" in again.err and "--force" in again.err
    assert (repo / "m/a.pt.ckpt.yaml").read_text() == before
    assert cli("add", "m/a.pt", "--step", "2", "--force").code == 0
    assert load(repo / "m/a.pt.ckpt.yaml")["checkpoint"]["step"] == 2


def test_add_json_output_is_the_card(repo: Path, cli) -> None:
    write_checkpoint(repo / "m/a.pt")
    result = cli("add", "m/a.pt", "--step", "1", "--json")
    assert result.code == 0
    assert json.loads(result.out) == load(repo / "m/a.pt.ckpt.yaml")
