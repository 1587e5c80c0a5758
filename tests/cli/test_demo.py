import pandas as pd

from scaleguard.cli import main


def test_demo_writes_a_synthetic_study(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    ladder = pd.read_csv(out / "synthetic_ladder.csv")
    assert set(ladder["source"]) == {"synthetic"}
    assert "synthetic" in (out / "README.md").read_text()
    assert "synthetic_ladder" in printed
    # The demo's own data pass the checks every command applies.
    assert main(["inspect", str(out / "synthetic_ladder.csv")]) == 0
