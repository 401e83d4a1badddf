"""The dataset audit: planted label flips ranked near the top, near-duplicates across splits, the map, keep."""

from __future__ import annotations

import numpy as np
import pytest

from tlstudio.core.data import audit
from tlstudio.core.data.confident_learning import find_label_issues, out_of_fold_probabilities
from tlstudio.core.data.feature_map import project_2d
from tlstudio.core.data.near_duplicates import find_near_duplicates


def blobs(per_class=80, classes=3, dim=24, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4.0, (classes, dim))
    y = np.repeat(np.arange(classes), per_class)
    x = centres[y] + rng.normal(0, spread, (len(y), dim))
    return x.astype(np.float32), y


def test_planted_flips_come_first_on_a_separable_set():
    x, y = blobs()
    rng = np.random.default_rng(1)
    flipped = rng.choice(len(y), 12, replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, 3, len(flipped))) % 3
    classes = ["a", "b", "c"]
    paths = [f"{classes[c]}/{i:03d}.png" for i, c in enumerate(noisy)]
    suspects, _ = audit.analyse(x, noisy, classes, paths, [None] * len(y))
    top = [s.path for s in suspects[:15]]
    planted = {paths[i] for i in flipped}
    assert len(planted & set(top)) >= 11
    # Each planted flip is suggested back to its true class.
    truth = {paths[i]: classes[y[i]] for i in flipped}
    assert all(s.suggested == truth[s.path] for s in suspects if s.path in truth)
    assert [s.score for s in suspects] == sorted((s.score for s in suspects), reverse=True)
    # Clean labels: (almost) nothing to report.
    clean, _ = audit.analyse(x, y, classes, paths, [None] * len(y))
    assert len(clean) <= 2


def test_out_of_fold_probabilities_never_see_their_own_label():
    """A point labelled against its cluster is predicted as its cluster, which an in-fold head would not do."""
    x, y = blobs(per_class=30, classes=2, dim=8)
    noisy = y.copy()
    noisy[0] = 1
    probs = out_of_fold_probabilities(x, noisy, 2, folds=5)
    assert probs.shape == (60, 2) and np.allclose(probs.sum(axis=1), 1)
    assert probs[0, 0] > 0.9
    issues = find_label_issues(probs, noisy)
    assert issues[0].index == 0 and issues[0].suggested == 0


def test_near_duplicates_across_splits_and_classes():
    x, y = blobs(per_class=40, classes=2, dim=32, spread=1.5)
    rng = np.random.default_rng(3)
    x = np.vstack([x, x[5] + rng.normal(0, 0.01, 32), x[50] + rng.normal(0, 0.01, 32)]).astype(np.float32)
    labels = np.concatenate([y, [0, 0]])  # the copy of row 50 (class 1) is labelled 0: a contradiction
    paths = [f"img{i:03d}.png" for i in range(len(labels))]
    splits = ["train"] * len(labels)
    splits[80] = "val"  # the copy of row 5 sits in validation: a leak
    _, dups = audit.analyse(x, labels, ["a", "b"], paths, splits)
    found = {d.paths: d for d in dups}
    assert set(found) == {("img005.png", "img080.png"), ("img050.png", "img081.png")}
    leak = found[("img005.png", "img080.png")]
    assert leak.cross_split and not leak.cross_class and leak.similarity > 0.99
    clash = found[("img050.png", "img081.png")]
    assert clash.cross_class and not clash.cross_split


def test_groups_join_chains_and_report_the_weakest_link():
    base = np.random.default_rng(0).normal(0, 1, (20, 16))
    x = np.vstack([base, base[0] * 1.0001, base[0] * 0.9999])
    groups = find_near_duplicates(x)
    assert [g.members for g in groups] == [(0, 20, 21)]


def test_pca_map_separates_classes():
    x, y = blobs(per_class=20, classes=2, dim=16)
    coords, method = project_2d(x, "pca")
    assert method == "pca" and coords.shape == (40, 2)
    a, b = coords[y == 0].mean(axis=0), coords[y == 1].mean(axis=0)
    assert np.linalg.norm(a - b) > 3 * coords[y == 0].std()
    again, _ = project_2d(x, "pca")
    assert np.array_equal(coords, again)
    with pytest.raises(ValueError, match="map method"):
        project_2d(x, "tsne")


def test_kept_images_are_not_suggested_again(tmp_path, make_image):
    root = tmp_path / "d"
    make_image(root / "a" / "x.png")
    x, y = blobs(per_class=30, classes=2, dim=8)
    noisy = y.copy()
    noisy[3] = 1
    paths = [f"p{i}" for i in range(60)]
    paths[3] = "a/x.png"
    first, _ = audit.analyse(x, noisy, ["a", "b"], paths, [None] * 60)
    assert first[0].path == "a/x.png"
    audit.keep(root, ["a/x.png"])
    assert audit.kept_paths(root) == {"a/x.png"}
    again, _ = audit.analyse(x, noisy, ["a", "b"], paths, [None] * 60, kept=audit.kept_paths(root))
    assert "a/x.png" not in [s.path for s in again]
    make_image(root / "a" / "x.png", size=(90, 90))  # a different picture under the same name
    assert audit.kept_paths(root) == set()


def _folder_snapshot(root):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_audit_dataset_on_real_images_finds_a_resized_copy_across_splits(tmp_path, image_folder, monkeypatch):
    from PIL import Image

    from tlstudio.core.config import TrainConfig

    root = image_folder({"blue": 8, "red": 8}, splits=("train", "val"), size=(64, 64))
    # A resized copy of a training image in validation: a leak.
    with Image.open(root / "train/red/red_train_003.png") as im:
        im.resize((120, 120)).save(root / "val/red/copy_of_003.png")
    before = _folder_snapshot(root)
    config = TrainConfig(alpha=0.25, input_size=64, weights="imagenet")
    events = []
    report = audit.audit_dataset(root, config, emit=events.append, cache_root=tmp_path / "cache")
    assert _folder_snapshot(root) == before  # an audit never changes the dataset
    assert report.cache_computed == len(report.paths) == 33 and report.cache_hits == 0
    leaks = [d for d in report.near_duplicates if d.cross_split]
    assert any(set(d.paths) >= {"train/red/red_train_003.png", "val/red/copy_of_003.png"} for d in leaks)
    data = report.to_json()
    assert set(data) >= {"suspects", "near_duplicates"}
    # With every feature cached under the remembered key, no model is built (nor TensorFlow needed).
    from tlstudio.core.data import audit_features

    def no_build(*args, **kwargs):
        raise AssertionError("the base was built although every feature is cached")

    monkeypatch.setattr(audit_features, "build_feature_model", no_build)
    again = audit.audit_dataset(root, config, cache_root=tmp_path / "cache")
    assert again.cache_hits == 33 and again.cache_computed == 0
    assert np.allclose(again.features, report.features, atol=1e-2)
    assert [s.path for s in again.suspects] == [s.path for s in report.suspects]
    # Another configuration has another key: it must build its own base.
    with pytest.raises(AssertionError, match="the base was built"):
        audit.audit_dataset(root, TrainConfig(alpha=0.25, input_size=64, weights="none"), cache_root=tmp_path / "cache")


def test_audit_reuses_the_features_a_training_run_cached(tmp_path, image_folder):
    """Same model key as the trainer: after a run on cached features, the audit computes nothing."""
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.train.trainer import train

    root = image_folder({"blue": 6, "red": 6}, size=(64, 64))
    config = TrainConfig(
        data_dir=str(root), alpha=0.25, input_size=64, weights="imagenet", head_epochs=1, batch_size=8
    )
    result = train(config, tmp_path / "run")
    assert result.status == "finished" and result.cache_computed > 0
    report = audit.audit_dataset(root, config)
    assert report.cache_computed == 0 and report.cache_hits == 12


def test_audit_needs_two_classes(tmp_path, image_folder):
    root = image_folder({"only": 5})
    with pytest.raises(audit.AuditError, match="two classes"):
        audit.audit_dataset(root)


def test_a_clear_disagreement_is_flagged_even_when_every_class_is_near_certain():
    """Small clean sets put the per-class thresholds near 1; 85 % for another class must still count."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    probs = np.full((60, 3), 0.01)
    probs[np.arange(60), labels] = 0.98
    probs += rng.uniform(0, 0.005, probs.shape)
    probs[45] = [0.85, 0.01, 0.14]  # labelled 2, looks like 0
    probs /= probs.sum(axis=1, keepdims=True)
    issues = find_label_issues(probs, labels)
    assert [(i.index, i.given, i.suggested) for i in issues] == [(45, 2, 0)]
    assert find_label_issues(probs, labels, disagreement=0.9) == []
