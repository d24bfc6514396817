"""Reading with a CTC head alone (`--decoder ctc`): its best path, or a prefix beam search over
its frames with a language model's shallow fusion.

The best path takes each frame's likeliest class, merges repeats and drops blanks: tensor
operations over the whole batch, no loop over tokens. The beam search (Hannun et al., 2014) goes
frame by frame, keeping the `width` texts the frames so far most probably read, each with the log
probabilities that they read exactly it, ending in a blank (`p_b`) or in its last character
(`p_nb`). A frame keeps a text (a blank, or its last character again) or extends it by a
character; the paths that reach one text both ways are summed. Texts compete at equal frames,
not at equal length, so a text the frames read whole is not pushed out by a longer prefix that
many unlikely continuations make probable. The language model weighs each character as it is
added, and the end of each text after the last frame; texts are ranked by their total, with no
length normalisation: the CTC head's probability of a whole text compares across lengths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from text_recognizer.lm import LanguageModelScorer, fused

KEY = 1_000_003
"""A text's key is the polynomial of its tokens in this odd number, wrapping at 2**64: a text
reached both by keeping it and by extending its prefix is found by its key, and merged."""


def best_path(log_probs: Tensor, blank: int, start: int, end: int, max_length: int) -> Tensor:
    """Tokens (b, l) after the start token from log probabilities (b, T, V): each frame's
    likeliest class (the start and end tokens, never text, aside), repeats merged, blanks
    dropped, then `end`; cut to `max_length` tokens, where greedy decoding stops."""
    unread = torch.tensor([start, end], device=log_probs.device)
    labels = log_probs.index_fill(-1, unread, float("-inf")).argmax(-1)  # (b, T)
    previous = F.pad(labels[:, :-1], (1, 0), value=blank)
    kept = (labels != blank) & (labels != previous)  # the first frame of each run
    return _texts(labels, kept, blank, end)[:, :max_length]


def prefix_beam_search(
    log_probs: Tensor,
    blank: int,
    start: int,
    end: int,
    max_length: int,
    width: int,
    lm: LanguageModelScorer | None = None,
    lm_weight: float = 0.0,
) -> Tensor:
    """Tokens (b, l) after the start token: the best of `width` texts per image (b, T, V), at
    most `max_length` tokens with the end. Each frame, every text may be extended by any of the
    frame's `width + 1` likeliest characters: without a language model, no extension by another
    could stay among the best `width`."""
    b, frames, classes = log_probs.shape
    k, device, never = width, log_probs.device, float("-inf")
    y = log_probs.double()
    text = y.index_fill(-1, torch.tensor([blank, start, end], device=device), never)
    c = min(k + 1, classes - 3)
    # One text at first, the empty one; the other slots hold nothing (p = 0).
    p_b = torch.full((b, k), never, dtype=torch.float64, device=device)
    p_b[:, 0] = 0.0
    p_nb, lm_score = torch.full_like(p_b, never), torch.zeros_like(p_b)
    last = torch.full((b, k), blank, dtype=torch.long, device=device)  # blank: no character yet
    length, key = torch.zeros_like(last), torch.zeros_like(last)
    # Each text right-aligned after start tokens, as the language model reads a history.
    history = torch.full((b, k, max_length), start, dtype=torch.long, device=device)
    for t in range(frames):
        frame, chars = y[:, t], text[:, t].topk(c, dim=-1).indices  # (b, V), (b, c)
        both = p_b.logaddexp(p_nb)
        # Kept: a blank after either ending, or the last character again after itself.
        stay_b = both + frame[:, blank].unsqueeze(1)
        stay_nb = p_nb + frame.gather(1, last)
        # Extended: by a character, a repeated one only after a blank.
        repeat = chars.unsqueeze(1) == last.unsqueeze(2)  # (b, k, c)
        grow = torch.where(repeat, p_b.unsqueeze(2), both.unsqueeze(2))
        grow = grow + frame.gather(1, chars).unsqueeze(1)
        grow = grow.masked_fill((length >= max_length - 1).unsqueeze(2), never).view(b, k * c)
        grow_key = (key.unsqueeze(2) * KEY + chars.unsqueeze(1) + 1).view(b, k * c)
        # An extension that reaches a text already held adds its paths to that text's.
        reached = (grow_key.unsqueeze(2) == key.unsqueeze(1)) & both.isfinite().unsqueeze(1)
        stay_nb = stay_nb.logaddexp(torch.where(reached, grow.unsqueeze(2), never).logsumexp(1))
        grow = grow.masked_fill(reached.any(2), never)
        grow_lm = fused(
            lm_score.repeat_interleave(c, 1).view(b * k, c),
            lm,
            lm_weight,
            history.view(b * k, max_length),
            chars.repeat_interleave(k, 0),
        ).view(b, k * c)
        cand_b = torch.cat((stay_b, torch.full_like(grow, never)), 1)
        cand_nb, cand_lm = torch.cat((stay_nb, grow), 1), torch.cat((lm_score, grow_lm), 1)
        top = (cand_b.logaddexp(cand_nb) + cand_lm).topk(k, dim=1).indices  # (b, k)
        grown, column = top >= k, (top - k).clamp(min=0)
        parent = torch.where(grown, column // c, top)
        char = chars.gather(1, column % c)
        p_b, p_nb, lm_score = cand_b.gather(1, top), cand_nb.gather(1, top), cand_lm.gather(1, top)
        key = torch.cat((key, grow_key), 1).gather(1, top)
        last = torch.where(grown, char, last.gather(1, parent))
        length = length.gather(1, parent) + grown.long()
        history = history.gather(1, parent.unsqueeze(2).expand(-1, -1, max_length))
        appended = torch.cat((history[..., 1:], char.unsqueeze(2)), 2)
        history = torch.where(grown.unsqueeze(2), appended, history)
    ends = torch.full((b * k, 1), end, dtype=torch.long, device=device)
    flat = history.view(b * k, max_length)
    total = fused((p_b.logaddexp(p_nb) + lm_score).view(b * k, 1), lm, lm_weight, flat, ends)
    best = total.view(b, k).argmax(1, keepdim=True)
    chosen = history.gather(1, best.unsqueeze(2).expand(-1, -1, max_length)).squeeze(1)
    positions = torch.arange(max_length, device=device)
    kept = positions >= max_length - length.gather(1, best)  # the text's own, right-aligned
    return _texts(chosen, kept, blank, end)


def _texts(labels: Tensor, kept: Tensor, pad: int, end: int) -> Tensor:
    """The `kept` labels of each row (b, n), in order, then `end`, then `pad`."""
    lengths = kept.sum(1)
    rows = torch.arange(len(labels), device=labels.device)
    out = torch.full(
        (len(labels), int(lengths.max()) + 1), pad, dtype=torch.long, device=labels.device
    )
    out[rows.unsqueeze(1).expand_as(labels)[kept], (kept.cumsum(1) - 1)[kept]] = labels[kept]
    out[rows, lengths] = end
    return out
