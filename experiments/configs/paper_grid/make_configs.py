"""The committed paper grid's configs: experiments/configs/paper.yaml split by model (the
units are independent and seeded per unit, so the split runs give what paper.yaml gives in
one run). ``python experiments/configs/paper_grid/make_configs.py`` writes them beside it."""

from pathlib import Path

import yaml

HERE = Path(__file__).parent
PARTS = {"baselines": ["ns", "ls", "jm", "bea"], "pf-d": ["pf-d"], "pf-lr": ["pf-lr"]}


def main() -> None:
    paper = yaml.safe_load((HERE.parent / "paper.yaml").read_text(encoding="utf-8"))
    for name, models in PARTS.items():
        config = {**paper, "name": f"paper-{name}", "models": models}
        text = f"# experiments/configs/paper.yaml with models {models} (make_configs.py).\n"
        text += yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        (HERE / f"{name}.yaml").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
