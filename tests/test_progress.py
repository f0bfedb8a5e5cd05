"""Progress bars: redrawn in place on a terminal, whole lines without carriage returns in a
log (pfpyro.progress)."""

from __future__ import annotations

import io

from pfpyro.progress import LineWriter, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_whole_lines_every_few_percent_and_no_carriage_returns(monkeypatch):
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    monkeypatch.delenv("TQDM_MINITERS", raising=False)
    log = io.StringIO()
    with progress_bar(total=1000, desc="svi", stream=log, mininterval=0) as bar:
        for _ in range(1000):
            bar.update(1)
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert 2 <= len(lines) <= 22  # every 5 % (and the first and last), not every step
    assert all(line.startswith("svi:") for line in lines)
    assert "1000/1000" in lines[-1] and len(set(lines)) == len(lines)


def test_a_log_line_at_most_every_interval_by_default(monkeypatch):
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    log = io.StringIO()
    for _ in progress_bar(range(500), desc="extend", stream=log):
        pass  # far quicker than the 30 s interval: the first and the last line only
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "500/500" in lines[-1] and "0/500" in lines[0]


def test_a_terminal_gets_tqdms_bar_redrawn_in_place():
    screen = Terminal()
    for _ in progress_bar(range(50), desc="encoding", stream=screen, mininterval=0):
        pass
    assert screen.getvalue().count("\r") > 10


def test_a_disabled_bar_writes_nothing():
    log = io.StringIO()
    for _ in progress_bar(range(10), desc="svi", enabled=False, stream=log):
        pass
    assert log.getvalue() == ""


def test_the_line_writer_drops_redraw_codes_and_repeats():
    log = io.StringIO()
    writer = LineWriter(log)
    writer.write("\ra  10%")
    writer.write("\x1b[A\ra  10%   ")
    writer.write("\ra  20%\n")
    assert log.getvalue() == "a  10%\na  20%\n"


def test_training_and_encoding_write_no_carriage_returns_to_a_log(capfd, tmp_path):
    """What `make demo > log` shows: the SVI bar and the encoder's bars (and transformers'
    own) as whole lines. Standard error is captured here, not a terminal."""
    from conftest import run_settings

    from pfpyro.encode import WordEncoder
    from pfpyro.encode.offline import OFFLINE_ENCODER
    from pfpyro.infer import train
    from pfpyro.testing.synthetic import make_world

    world = make_world(2, 2, latent_dim=2, seed=0)
    pairs = world.pairs()
    config = run_settings(latent_dim=2, batch_size=8, max_steps=40, eval_every=10, log_every=5,
                          progress=True)  # fmt: skip
    train({p: world.train[p] for p in pairs}, {p: world.dev[p] for p in pairs}, **config,
          out_dir=tmp_path / "run", num_classes=world.num_classes)  # fmt: skip
    encoder = WordEncoder(OFFLINE_ENCODER, progress=True)
    encoder.encode([["a", "few", "words"], ["and", "more"]])
    err = capfd.readouterr().err
    assert "\r" not in err
    assert any(line.startswith("svi:") and "40/40" in line for line in err.splitlines())
    assert any(line.startswith("encoding:") for line in err.splitlines())
