"""The locked install (requirements/lock.py): the committed lock agrees with setup.cfg and the
Makefile's torch pin, and a lock that does not is refused with the file, line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_script

lock = load_script("requirements/lock.py")

SETUP_CFG = """\
[options]
install_requires =
    numpy>=1.26
    torch>=2.13,<2.15

[options.extras_require]
dev =
    # a comment
    pytest>=8
"""
MAKEFILE = "TORCH_PIN ?= torch==2.13.0\n"


def files(tmp_path: Path, pins: str) -> tuple[Path, Path, Path]:
    (tmp_path / "lock.txt").write_text(lock.HEADER + pins)
    (tmp_path / "setup.cfg").write_text(SETUP_CFG)
    (tmp_path / "Makefile").write_text(MAKEFILE)
    return tmp_path / "lock.txt", tmp_path / "setup.cfg", tmp_path / "Makefile"


def test_the_committed_lock_agrees_with_setup_cfg_and_the_torch_pin():
    assert lock.check() >= len(lock.declared()) + 1
    pins = lock.read_lock()
    assert str(pins["torch"][1]) == str(lock.torch_pin().specifier).removeprefix("==")
    for name in ("pyro-ppl", "transformers", "numpy", "arviz", "setuptools", "pip"):
        assert name in pins  # the install's whole stack, not only setup.cfg's names


def test_an_agreeing_lock_passes(tmp_path):
    assert lock.check(*files(tmp_path, "numpy==2.4.6\npytest==9.0.1\ntorch==2.13.0\n")) == 4


@pytest.mark.parametrize(
    ("pins", "message"),
    [
        ("numpy==2.4.6\ntorch==2.13.0\n", "no locked version of pytest"),
        ("numpy==1.20.0\npytest==9.0.1\ntorch==2.13.0\n", "lock.txt:5: numpy==1.20.0 is outside"),
        ("numpy==2.4.6\npytest==9.0.1\ntorch==2.14.0\n", "torch==2.14.0 is outside Makefile"),
        ("numpy>=2\npytest==9.0.1\ntorch==2.13.0\n", "lock.txt:5: expected NAME==VERSION"),
        ("numpy==2.4.6\nnumpy==2.4.5\n", "lock.txt:6: numpy is locked twice"),
    ],
)
def test_a_disagreeing_lock_is_refused_naming_its_line(tmp_path, pins, message):
    with pytest.raises(lock.LockError, match=message.replace(".", r"\.")):
        lock.check(*files(tmp_path, pins))


def test_write_pins_every_frozen_package_without_the_project_or_local_labels():
    freeze = "\n".join([
        "Torch==2.13.0+cpu",
        "# Editable Git install with no remote (pfpyro==0.1.0)",
        "-e /work/pfpyro",
        "absl-py==2.5.1",
        "pfpyro==0.1.0",
        "pfpyro @ file:///work/pfpyro",
        "pip==26.3",
    ])  # fmt: skip
    text = lock.write(freeze)
    assert text.startswith(lock.HEADER)
    assert text.removeprefix(lock.HEADER).splitlines() == [
        "absl-py==2.5.1",
        "pip==26.3",
        "Torch==2.13.0",
    ]
    with pytest.raises(lock.LockError, match="expected NAME==VERSION"):
        lock.write("pkg @ file:///somewhere/pkg.whl")


def test_the_cli_prints_the_error_and_exits_2(monkeypatch, capsys, tmp_path):
    lock_file, setup_cfg, makefile = files(tmp_path, "numpy==2.4.6\n")
    monkeypatch.setattr(lock, "LOCK", lock_file)
    monkeypatch.setattr(lock, "SETUP_CFG", setup_cfg)
    monkeypatch.setattr(lock, "MAKEFILE", makefile)
    assert lock.main(["check"]) == 2
    assert capsys.readouterr().err.startswith(f"lock: {lock_file}: no locked version of torch")
    lock_file.write_text(lock.HEADER + "numpy==2.4.6\npytest==9.0.1\ntorch==2.13.0\n")
    assert lock.main(["check"]) == 0
    assert "agrees with setup.cfg" in capsys.readouterr().out
