"""Published rows beside ours: LRA (S4, the S4D paper's rows, generated Pathfinder labelled), the Mamba
paper's Table 1 (selective copying) and Table 11 (induction heads)."""

from __future__ import annotations

from mamba_lm.evaluation.published import LRA_PUBLISHED, lra_average
from mamba_lm.evaluation.report.tables import lra_table, synthetic_table


def test_lra_table_labels_generated_pathfinder_and_keeps_it_out_of_the_average():
    scores = {"s4d": {"listops": 58.0, "text": 86.0, "retrieval": 90.0, "image": 88.0}}
    scores["s4d"] |= {"pathfinder": 93.0, "pathx": 91.0}
    table = lra_table(scores, generated={("s4d", "pathfinder")})
    ours = table.rows[0]
    assert ours[5] == "93.00 (generated)" and ours[-1] == "–"
    assert "not comparable" in table.caption
    plain = lra_table(scores).rows[0]
    assert plain[5] == "93.00" and plain[-1] == f"{lra_average(scores['s4d']):.2f}"
    names = [row[0] for row in table.rows]
    assert {"S4 (updated) (published)", "S4D-LegS (published)", "S4D-Inv (published)"} <= set(names)
    assert LRA_PUBLISHED["S4D-Lin"]["pathx"] is None  # S4D-Lin fails Path-X
    lin = table.rows[names.index("S4D-Lin (published)")]
    assert lin[6] == "fail"


def test_induction_heads_table_has_the_papers_rows_at_our_lengths():
    lengths = [64, 256, 16384, 32768, 1 << 20]
    table = synthetic_table({"run": (lengths, [100.0, 100.0, 99.0, 98.0, 97.0])}, "induction_heads")
    assert table.header == ["run", "2^6", "2^8", "2^14", "2^15", "2^20"]
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["Mamba, 74K (paper, Table 11)"] == ["100.0"] * 5
    assert rows["MHA-xPos, 137K (paper, Table 11)"] == ["100.0", "100.0", "7.8", "oom", "oom"]
    assert rows["MHA-Abs, 137K (paper, Table 11)"][0] == "100.0"


def test_selective_copying_shows_the_table_1_rows_our_three_models_compare_with():
    """Mamba (S6), the Mamba block with S4D (MambaS4D: "Mamba / S4") and S4D alone ("No gate / S4")."""
    table = synthetic_table({"mamba": ([4096], [99.0]), "s4d": ([4096], [20.0])}, "selective_copying")
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["Mamba / S6 (paper, Table 1)"] == ["99.8"]
    assert rows["No gate / S4 (paper, Table 1)"] == ["18.3"]
    assert rows["Mamba / S4 (paper, Table 1)"] == ["56.4"]
    assert not any("H3" in row[0] or "Hyena" in row[0] for row in table.rows)  # architectures we lack
    assert "MambaS4D" in table.caption


def test_plain_synthetic_table_has_only_our_rows():
    table = synthetic_table({"run": ([64, 100], [50.0, 40.0])})
    assert [row[0] for row in table.rows] == ["run"] and table.header == ["run", "2^6", "100"]
