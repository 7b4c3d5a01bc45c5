"""Progress bars of fastnn.nn.Trainer: drawn on a terminal (once per chunk of a fused epoch), never in a log."""
import io
import sys

import numpy as np
import pytest

from fastnn import nn

pytest.importorskip("tqdm")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _train(backend="numpy"):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 8)).astype(np.float32)
    y = rng.integers(0, 3, 200)
    model = nn.mlp([8, 6, 3], random_state=0, backend=backend)
    trainer = nn.Trainer(model, nn.SGD(0.05), batch_size=5, epochs=2, random_state=0, verbose=True)
    assert trainer.uses_fused_epochs()
    trainer.fit(X, y)


@pytest.mark.parametrize("stream", [io.StringIO, _Terminal])
def test_bar_on_a_terminal_clean_lines_in_a_log(monkeypatch, stream):
    err = stream()
    monkeypatch.setattr(sys, "stderr", err)
    _train()
    text = err.getvalue()
    epoch_lines = [line for line in text.replace("\r", "\n").splitlines() if line.startswith("epoch   ")]
    assert len(epoch_lines) == 2  # one line of metrics per epoch either way
    if stream is io.StringIO:  # a log: no carriage returns, no bar stuck at 0%
        assert "\r" not in text and "%|" not in text
    else:  # a terminal: the bar starts at 0% and is drawn again when the fused epoch reports its batches
        drawn = {line.split("%|")[0].split()[-1] for line in text.split("\r") if "%|" in line}
        assert {"0", "100"} <= drawn
