"""The card reader: yaml-rs (dvcckpt's fast path) vs libyaml and ruamel, with the same checks.

    python benchmarks/bench_reader.py [--cards 2000] [--runs 5] [--toy]

Readers, each giving the same plain data (checked):
- `load_fast`: the reader behind the hook, catalog, `show` and gates (text checks,
  yaml-rs, limits on the data);
- `libyaml strict`: the same checks, data built from libyaml's C events
  (`yamlstrict.load`: the path `load_fast` takes for text with rare YAML features);
- `ruamel round-trip`: the editing reader (`load_untrusted`: `load_fast`, then ruamel,
  then the comparison);
- raw `yaml_rs.loads` and libyaml `CSafeLoader` without checks, for reference.

Figures: one typical card (the synthetic history's, ~2 KB) and `--cards` distinct
cards, median of `--runs` runs. PASS: every reader agrees on every card, and
load_fast is at least 2x faster than libyaml strict on the batch (the reason to
keep yaml-rs as a dependency).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure_call, parse_args, verdict
from gen_history import card

from dvcckpt.adapters import yamldoc, yamlstrict


def readers() -> dict[str, Callable[[str], Any]]:
    import yaml
    import yaml_rs

    return {
        "load_fast (yaml-rs + checks)": lambda text: yamldoc.load_fast(text, "card"),
        "libyaml strict (events + checks)": lambda text: yamlstrict.load(text, "card")[0],
        "ruamel round-trip (editing)": lambda text: yamldoc.to_plain(
            yamldoc.load_untrusted(text, "card")
        ),
        "yaml_rs.loads, no checks": lambda text: yaml_rs.loads(text, parse_datetime=False),
        "libyaml CSafeLoader, no checks": lambda text: yaml.load(text, Loader=yaml.CSafeLoader),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parse_args(parser, toy={"cards": 20, "runs": 3})
    rng = random.Random(11)
    texts = [card(rng, f"m{i % 7}", 100 * (i + 1), i).decode() for i in range(args.cards)]
    one = texts[0]
    found = readers()
    reference = [json.dumps(yamldoc.load_fast(text, "card")) for text in texts]
    agree = True
    for name, read in found.items():
        if "no checks" in name:
            continue  # CSafeLoader makes timestamps datetimes: no same-data claim
        agree = agree and [json.dumps(read(text)) for text in texts] == reference
    print(f"cards: {args.cards} distinct synthetic cards, {len(one)} bytes each (typical)")
    batch: dict[str, float] = {}
    for name, read in found.items():
        repeat = 200 if "ruamel" not in name else 20
        single = measure_call(lambda read=read, r=repeat: [read(one) for _ in range(r)], args.runs)
        runs = args.runs if "ruamel" not in name else max(1, args.runs // 2)
        many = measure_call(lambda read=read: [read(text) for text in texts], runs)
        batch[name] = many.seconds
        print(f"{name + ':':<36} one card median {single.ms * 1000 / repeat:8.1f} us; "
              f"{args.cards} cards median {many.ms:8.1f} ms ({many.runs()})")  # fmt: skip
    scan = measure_call(lambda: [yamlstrict.needs_scan(yamlstrict.prepare(one, "c"))
                                 for _ in range(1000)], args.runs)  # fmt: skip
    print(f"text checks alone (prepare + needs_scan): one card median {scan.ms:8.3f} us")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MB")
    fast, strict = batch["load_fast (yaml-rs + checks)"], batch["libyaml strict (events + checks)"]
    print(f"load_fast vs libyaml strict on {args.cards} cards: {strict / fast:.1f}x faster "
          f"(target >= 2x); every reader agrees: {agree}")  # fmt: skip
    print(verdict(agree and strict / fast >= 2))


if __name__ == "__main__":
    main()
