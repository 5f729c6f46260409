"""CTC decoding of the recogniser's output (SPEC §2, §3.8)."""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np


def load_dictionary(source: str | os.PathLike | Iterable[str]) -> list[str]:
    """The character list, one per line, from a file path or from lines already read.

    Only line endings are stripped: a dictionary may hold a space as a character.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8") as f:
            source = f.readlines()
    return [line.rstrip("\r\n") for line in source]


def _class_table(num_classes: int, charset: list[str]) -> tuple[np.ndarray, int]:
    """Text per class index and the blank index, chosen by the model's class count."""
    n = len(charset)
    if num_classes == n + 2:    # PaddleOCR >= 2.0: blank first, space appended last
        return np.array([""] + charset + [" "], dtype=object), 0
    if num_classes == n + 1:    # 2020 models: blank last, no space
        return np.array(charset + [""], dtype=object), n
    raise ValueError(
        f"the rec model has {num_classes} classes but the dictionary has {n} characters: expected "
        f"{n + 2} (blank first + space) or {n + 1} (blank last); is it the model's dictionary?")


def ctc_decode(probs: np.ndarray, charset: list[str]) -> list[tuple[str, float]]:
    """Greedy CTC: best class per step, repeats merged, blanks dropped.

    ``probs`` is (N, T, C). Returns one ``(text, score)`` per line; the score is the mean of the
    kept steps' probabilities (0.0 for an empty line).
    """
    probs = np.asarray(probs)
    if probs.ndim != 3:
        raise ValueError(f"expected rec output (N, T, C), got shape {probs.shape}")
    table, blank = _class_table(probs.shape[2], charset)
    best = probs.argmax(axis=2)
    best_prob = probs.max(axis=2)
    keep = best != blank
    keep[:, 1:] &= best[:, 1:] != best[:, :-1]
    results = []
    for idx, p, k in zip(best, best_prob, keep):
        text = "".join(table[idx[k]])
        results.append((text, float(p[k].mean()) if k.any() else 0.0))
    return results
