"""``dvx ls models`` lists each model's attention q/k layers (names, heads) next to its blocks."""

from __future__ import annotations

import json

from dvx.cli import main


def test_ls_models_lists_attention_layers(capsys) -> None:
    try:
        main(["ls", "models", "--json"])
    except SystemExit as exc:
        assert not exc.code
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    wan = rows["tiny-wan"]["attention"]
    assert [a["layer"] for a in wan] == [f"layer.{i}.attn1" for i in range(4)]
    assert wan[0]["blocks"] == ["layer.0.attn1.q", "layer.0.attn1.k"] and wan[0]["heads"] == 2
    svd = [a["layer"] for a in rows["tiny-svd"]["attention"]]
    assert svd[:2] == ["down.0.s0.0.attn1", "down.0.t0.0.attn1"] and "mid.t0.0.attn1" in svd
    assert rows["tiny-dinov2"]["attention"] == []  # no q/k blocks for the baselines
    main(["ls", "models"])
    assert (
        "attention q/k (<layer>.q, <layer>.k, per head .h<i>): layer.0.attn1 (2 heads)"
        in capsys.readouterr().out
    )
