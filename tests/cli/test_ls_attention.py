"""``dvx ls models NAME --weights DIR`` lists the model's attention q/k layers (names, heads) next to its
blocks, from the folder's config files (the plain listing reads the shipped block table, builds nothing)."""

from __future__ import annotations

import json

from dvx.cli import main
from dvx.extract.models import backbone_class, model_spec


def _ls(capsys, *args: str) -> str:
    try:
        main(["ls", "models", *args])
    except SystemExit as exc:
        assert not exc.code
    return capsys.readouterr().out


def _folder(name: str) -> str:
    return str(backbone_class(name).folder_for(model_spec(name)))


def test_ls_models_lists_attention_layers(capsys) -> None:
    wan = json.loads(_ls(capsys, "tiny-wan", "--weights", _folder("tiny-wan"), "--json"))["attention"]
    assert [a["layer"] for a in wan] == [f"layer.{i}.attn1" for i in range(4)]
    assert wan[0]["blocks"] == ["layer.0.attn1.q", "layer.0.attn1.k"] and wan[0]["heads"] == 2
    svd = json.loads(_ls(capsys, "tiny-svd", "--weights", _folder("tiny-svd"), "--json"))["attention"]
    svd_names = [a["layer"] for a in svd]
    assert svd_names[:2] == ["down.0.s0.0.attn1", "down.0.t0.0.attn1"] and "mid.t0.0.attn1" in svd_names
    dino = json.loads(_ls(capsys, "tiny-dinov2", "--weights", _folder("tiny-dinov2"), "--json"))
    assert dino["attention"] == []  # no q/k blocks for the baselines
    out = _ls(capsys, "tiny-wan", "--weights", _folder("tiny-wan"))
    assert "attention q/k (<layer>.q, <layer>.k, per head .h<i>): layer.0.attn1 (2 heads)" in out
