"""PCA colours are a deterministic function of the features (same features, same image)."""

from __future__ import annotations

import numpy as np

from dvx.viz.pca import colours, fit_pca, positions


def feats(seed: int, shape: tuple[int, ...] = (3, 16, 6, 8)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(np.float16)
    x[:, :3] += np.linspace(-2, 2, shape[-1]).astype(np.float16)  # structure along x
    return x


def test_same_features_give_the_same_colours_bit_for_bit() -> None:
    a, b = feats(0), feats(0)
    ca = colours(fit_pca(positions(a)), a)
    cb = colours(fit_pca(positions(b)), b)
    assert ca.dtype == np.uint8 and ca.shape == (3, 6, 8, 3)
    assert np.array_equal(ca, cb)


def test_different_features_give_different_colours() -> None:
    a, b = feats(0), feats(1)
    assert not np.array_equal(colours(fit_pca(positions(a)), a), colours(fit_pca(positions(b)), b))


def test_axis_signs_are_fixed_so_a_flipped_feature_space_gives_the_same_picture() -> None:
    a = feats(2)
    p = fit_pca(positions(a))
    for axis in p.axes:
        assert axis[np.argmax(np.abs(axis))] > 0
    # -x has the same covariance: the same axes with the same signs, and mirrored colours
    q = fit_pca(positions(-a))
    assert np.allclose(p.axes, q.axes)
    mirrored = 255 - colours(p, a).astype(int)
    assert np.abs(colours(q, -a).astype(int) - mirrored).max() <= 1


def test_the_fit_is_joint_over_frames_so_one_colour_means_one_direction() -> None:
    a = feats(3)
    joint = fit_pca(positions(a))
    whole = colours(joint, a)
    # colouring one frame with the joint fit gives that frame's part of the whole picture
    assert np.array_equal(colours(joint, a[1:2]), whole[1:2])


def test_fewer_channels_than_colours_still_gives_rgb() -> None:
    a = feats(4, (2, 2, 4, 4))
    assert colours(fit_pca(positions(a)), a).shape == (2, 4, 4, 3)
