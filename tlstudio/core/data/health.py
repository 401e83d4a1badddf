"""The health report of a scanned dataset: the warnings a person should read before training.

Too few images, imbalance, empty or missing classes, loose images, tiny images, unread folders,
and byte-identical copies (leakage between splits leads the list: it silently inflates scores).
"""

from __future__ import annotations

from collections import defaultdict

from tlstudio.core.data.layout import (
    REASON_NO_CLASS,
    SPLITS,
    Entry,
    Walker,
    class_name_problem,
    examples,
    is_image_name,
    printable_name,
)
from tlstudio.core.data.records import DatasetScan
from tlstudio.core.data.split import class_difference

MIN_IMAGES_PER_CLASS = 5
IMBALANCE_RATIO = 5.0
MIN_SIDE = 32
#: Start of the warning about byte-identical files in different splits.
LEAKAGE_PREFIX = "DATA LEAKAGE:"


def dataset_warnings(scan: DatasetScan, walker: Walker, dup_groups: list[list[Entry]]) -> list[str]:
    """The warnings about a scanned dataset, in the order they are worth reading."""
    out: list[str] = []
    usable = scan.usable()
    counts = scan.class_counts()

    if walker.symlinks:
        out.append(
            f"{len(walker.symlinks)} linked folder(s) not followed (a link could mix classes or loop): "
            + examples(walker.symlinks)
        )
    if walker.unreadable:
        out.append(
            f"{len(walker.unreadable)} folder(s) could not be read (permission denied?): "
            + examples(walker.unreadable)
        )

    # class folders without usable images
    usable_by_folder: dict[tuple[str | None, str], int] = defaultdict(int)
    for f in usable:
        usable_by_folder[(f.split, f.class_name or "")] += 1
    bad_names = sorted({name for _, name in walker.bad_class_folders})
    for name in bad_names:
        out.append(
            f"Folder '{printable_name(name)}' cannot be a class: {class_name_problem(name)}, which labels.txt "
            "and CSV files cannot hold. Rename the folder."
        )
    for split, name in sorted(
        walker.class_folders, key=lambda sc: (SPLITS.index(sc[0]) if sc[0] else -1, sc[1])
    ):
        if name in bad_names:
            continue
        if usable_by_folder.get((split, name), 0) == 0:
            folder = f"{split}/{name}" if split else name
            if name in counts:
                if not scan.presplit:  # pre-split: "Split 'val' has no images of class ..." says it below
                    out.append(f"Class folder '{folder}' has no usable images.")
            else:
                out.append(f"Folder '{folder}' has no usable images, so '{name}' is not a class.")

    loose = [f.path for f in scan.files if f.reason == REASON_NO_CLASS and is_image_name(f.path)]
    if loose:
        out.append(
            f"{len(loose)} image(s) are not inside a class folder and are not used: {examples(loose)}. "
            "Put the images of each class in a folder named after the class."
        )

    if not scan.classes:
        out.append("No class folders with usable images were found: expected DATA/<class>/<images>.")
    elif len(scan.classes) == 1:
        only = scan.classes[0]
        hint = ""
        subfolders = {f.path.split("/")[1] for f in usable if f.path.count("/") >= 2 and f.class_name == only}
        if not scan.presplit and len(subfolders) >= 2:
            hint = f" Its images are in sub-folders ({examples(sorted(subfolders))}): did you mean to pick '{only}' itself?"
        out.append(f"Only one class ('{only}'): a classifier needs at least two class folders.{hint}")

    if scan.presplit:
        present = scan.splits()
        if "train" not in present:
            out.append("The folder is split, but there is no 'train' folder with usable images.")
        else:
            train = {c for c, n in scan.class_counts("train").items() if n}
            for split in present:
                if split == "train":
                    continue
                other = {c for c, n in scan.class_counts(split).items() if n}
                if split == "val" and other:
                    difference = class_difference(train, other, split)
                    if difference:
                        out.append(f"{difference}: training refuses this; give every split the same class folders.")
                    continue
                missing = [c for c in sorted(train) if c not in other]
                if missing:
                    out.append(
                        f"Split '{split}' has no images of class(es) {', '.join(repr(c) for c in missing)}."
                    )
                if other - train:
                    out.append(f"{class_difference(train, other | train, split)}: training refuses this.")

    few = [(c, n) for c, n in counts.items() if 0 < n < MIN_IMAGES_PER_CLASS]
    if few:
        out.append(
            f"Class(es) with fewer than {MIN_IMAGES_PER_CLASS} usable images: "
            + ", ".join(f"'{c}' ({n})" for c, n in few)
            + ". Add more images for a useful model."
        )
    if len(counts) >= 2:
        largest = max(counts, key=lambda c: counts[c])
        smallest = min(counts, key=lambda c: counts[c])
        if counts[smallest] > 0 and counts[largest] / counts[smallest] > IMBALANCE_RATIO:
            out.append(
                f"Strong class imbalance: '{largest}' has {counts[largest]} images, '{smallest}' only "
                f"{counts[smallest]} ({counts[largest] / counts[smallest]:.1f}x)."
            )

    # duplicates
    leak, across, within = [], [], []
    for group in dup_groups:
        keys = {(e.split, e.class_name) for e in group}
        splits = {e.split for e in group}
        classes = {e.class_name for e in group}
        pair = (
            f"{group[0].rel} = {group[1].rel}"
            if len(group) == 2
            else f"{group[0].rel} = {len(group) - 1} others"
        )
        if len(splits) > 1:
            leak.append(pair)
        if len(classes) > 1:
            across.append(pair)
        if len(keys) < len(group):
            within.append(pair)
    if leak:
        out.append(
            f"{LEAKAGE_PREFIX} {len(leak)} group(s) of byte-identical images appear in more than one split "
            f"({examples(leak)}). Validation/test scores will be too optimistic: remove the copies."
        )
    if across:
        out.append(
            f"{len(across)} group(s) of byte-identical images are in different classes ({examples(across)}): "
            "the same picture cannot have two labels."
        )
    if within:
        out.append(
            f"{len(within)} group(s) of byte-identical duplicate files within a class: {examples(within)}."
        )

    small = [
        f.path
        for f in usable
        if f.width is not None and f.height is not None and min(f.width, f.height) < MIN_SIDE
    ]
    if small:
        out.append(f"{len(small)} image(s) are smaller than {MIN_SIDE} px on a side: {examples(small)}.")
    return out
