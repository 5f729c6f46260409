"""CTC decoding of the recogniser's output (docs/design.md §1.3, §3.8)."""

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


def best_path(probs: np.ndarray) -> np.ndarray:
    """(N, T, C) class probabilities -> (N, T, 2): each time step's best class and its probability.

    All that greedy decoding needs. The bundled rec model computes it in its graph (its first
    output, see ``pdserving.package``), so a few KB leave the model instead of the MB-sized
    softmax; this is the same step for models that only output the softmax.
    """
    probs = np.asarray(probs)
    if probs.ndim != 3:
        raise ValueError(f"expected rec output (N, T, C), got shape {probs.shape}")
    return np.stack([probs.argmax(axis=2).astype(np.float32), probs.max(axis=2)], axis=2)


def ctc_decode(probs: np.ndarray, charset: list[str]) -> list[tuple[str, float]]:
    """Greedy CTC on the class probabilities (N, T, C); see ``decode_best_path``."""
    return decode_best_path(best_path(probs), np.shape(probs)[2], charset)


def decode_best_path(best: np.ndarray, num_classes: int,
                     charset: list[str]) -> list[tuple[str, float]]:
    """Greedy CTC: best class per step, repeats merged, blanks dropped.

    ``best`` is (N, T, 2) as ``best_path`` makes it, from a model of ``num_classes`` classes.
    Returns one ``(text, score)`` per line; the score is the mean of the kept steps'
    probabilities (0.0 for an empty line).
    """
    best = np.asarray(best)
    if best.ndim != 3 or best.shape[2] != 2:
        raise ValueError(f"expected the rec best path (N, T, 2), got shape {best.shape}")
    table, blank = _class_table(num_classes, charset)
    idx = best[:, :, 0].astype(np.int64)
    best_prob = best[:, :, 1]
    keep = idx != blank
    keep[:, 1:] &= idx[:, 1:] != idx[:, :-1]
    results = []
    for i, p, k in zip(idx, best_prob, keep):
        text = "".join(table[i[k]])
        results.append((text, float(p[k].mean()) if k.any() else 0.0))
    return results
