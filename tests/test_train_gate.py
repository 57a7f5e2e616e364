import numpy as np

from src.baselines.contour_gate import FEATURES
from src.train_gate import fit_gate, main, report


def _examples(rng, share):
    """Planes whose blocks should move by ``share`` of the ramp's change where feature 0 is high, else not."""
    out = []
    for _ in range(4):
        f = rng.normal(size=(len(FEATURES), 20, 24)).astype(np.float32)
        mask = rng.random((20, 24)) < 0.7
        change = rng.normal(size=(20, 24)).astype(np.float32) * 3
        target = np.where(f[0] > 0, share * change, 0.0).astype(np.float32)
        out.append((f, mask, change, target))
    return out


def test_fit_gate_learns_when_to_apply_the_ramp():
    rng = np.random.default_rng(0)
    ex = {"stream_1080p": _examples(rng, 1.0), "h264": _examples(rng, 1.0)}
    gate = fit_gate(ex, steps=150, width=8, layers=3, dilations=(1, 2), patch=24, say=lambda s: None)
    table = report(gate, ex)
    assert "| stream_1080p |" in table
    # no ramp, hand rules (feature 9, random here), learned, oracle: learned beats no ramp
    row = [float(v) for v in table.splitlines()[2].strip("|").split("|")[1:]]
    assert row[2] < 0.6 * row[0] and row[3] <= row[2]


def test_main_says_what_is_missing(tmp_path, capsys):
    assert main(["--photos", str(tmp_path)]) == 2
    assert "python -m src.data.fetch" in capsys.readouterr().err
    assert main(["--steps", "0"]) == 2
