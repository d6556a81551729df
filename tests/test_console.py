"""What a training prints: under 100 console lines and no library warning on a CPU run, the
result table and where the outputs went; log.txt keeps the whole log."""
import os
import subprocess
import sys

import pytest
from helpers import FAST_OPTS

REPO = os.path.join(os.path.dirname(__file__), "..")
GAP = os.path.join(REPO, "configs", "quick", "diverse_weather_clip_gap.yaml")


def train_net(out, *flags):
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "train_net.py"), "--config-file", GAP,
         *flags, *FAST_OPTS, "SOLVER.MAX_ITER", "4", "SOLVER.STEPS", "()",
         "MODEL.CLIP_GAP.OPT_ITERS", "2", "OUTPUT_DIR", str(out)],
        capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_training_prints_what_a_user_acts_on_and_log_txt_keeps_everything(synthetic_weather,
                                                                            tmp_path):
    proc = train_net(tmp_path / "quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = proc.stdout + proc.stderr
    lines = console.splitlines()
    assert len(lines) <= 100, console
    assert not [line for line in lines if "WARNING" in line or "Warning" in line
                or line.startswith("W1")]  # no library warning on a CPU run
    assert "\x1b[" not in console  # no colour codes when the output is not a terminal
    assert "ClipGapRCNN on cpu" in console and "| daytime_clear |" in console
    assert f"Outputs in {tmp_path / 'quiet'}: " in console
    log = (tmp_path / "quiet" / "log.txt").read_text()
    assert "Environment info:" in log and "Config:" in log and "ClipGapRCNN(" in log
    assert "Per-class AP50 on synthetic_dw_daytime_clear_test" in log

    verbose = train_net(tmp_path / "verbose", "--verbose")
    assert "Environment info:" in verbose.stdout and "ClipGapRCNN(" in verbose.stdout
