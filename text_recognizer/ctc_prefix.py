"""Joint CTC/attention scores of the next token, kept per hypothesis (greedy: one per image;
beam search: several, reordered as the beam moves).

The attention decoder proposes its most likely next tokens; each is rescored by how likely the
CTC head makes the text so far followed by it (the CTC prefix probability). CTC is monotonic, so
the joint choice cannot repeat or skip a stretch of the line, the attention decoder's typical
failures, while the decoder still brings its context to each character.

The prefix probabilities follow the usual forward recursion over the CTC frames, kept per image
for the current text: `r_n[t]`, `r_b[t]` are the log probabilities that frames 0..t produce the
text with the last frame non-blank or blank. Extending by a token is a first-order linear
recurrence over t, computed here in closed form with `logcumsumexp` instead of a loop over frames.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _shift(x: Tensor, first: Tensor | float) -> Tensor:
    """x[..., t - 1] at t, `first` at t = 0."""
    head = torch.as_tensor(first, dtype=x.dtype, device=x.device).expand(*x.shape[:-1], 1)
    return torch.cat([head, x[..., :-1]], dim=-1)


class CTCPrefixScorer:
    """Rescores the decoder's top `candidates` next tokens with CTC prefix probabilities.

    `log_probs` (b, T, V) are the CTC head's per-frame log probabilities; `weight` (0, 1] is the
    CTC share of the score (without a share, decode by argmax). Call `choose` once per step.
    """

    def __init__(
        self,
        log_probs: Tensor,
        blank: int,
        end_index: int,
        weight: float = 0.5,
        candidates: int = 4,
    ) -> None:
        if not 0 < weight <= 1:
            raise ValueError(f"CTC weight must be in (0, 1], got {weight}")
        self.log_probs = log_probs.double()
        self.blank = blank
        self.end_index = end_index
        self.weight = weight
        self.candidates = min(candidates, log_probs.shape[-1] - 1)
        b = log_probs.shape[0]
        self.blank_cumsum = self.log_probs[..., blank].cumsum(-1)  # (b, T)
        self.r_n = torch.full_like(self.blank_cumsum, float("-inf"))
        self.r_b = self.blank_cumsum.clone()
        self.prefix = torch.zeros(b, dtype=torch.float64, device=log_probs.device)
        self.last = torch.full((b,), -1, dtype=torch.long, device=log_probs.device)
        self.empty = True
        self._pending: tuple[Tensor, Tensor, Tensor] | None = None

    def choose(self, logits: Tensor) -> Tensor:
        """The next token (b,) for the decoder's `logits` (b, V), and the state advanced to it."""
        tokens, scores = self.score(logits, self.candidates)
        best = scores.argmax(1)
        self.advance(torch.arange(len(best), device=best.device), best)
        return tokens.gather(1, best.unsqueeze(1)).squeeze(1)

    def score(self, logits: Tensor, count: int) -> tuple[Tensor, Tensor]:
        """The decoder's top `count` (at least `candidates`) next tokens (b, c) per row and their
        joint scores (b, c): the attention log probability and the CTC prefix gain, weighted.
        The extensions are kept until `advance` picks the ones to go on with."""
        attention = logits.double().log_softmax(-1)
        attention[:, self.blank] = float("-inf")  # padding, CTC's blank: never a next token
        count = min(max(count, self.candidates), attention.shape[-1] - 1)
        tokens = attention.topk(count, dim=-1).indices  # (b, c)
        r_n, prefix = self._extend(tokens)  # (b, c, T), (b, c)
        ended = self.r_n[:, -1].logaddexp(self.r_b[:, -1]).unsqueeze(1).expand_as(prefix)
        prefix = torch.where(tokens == self.end_index, ended, prefix)
        # Once CTC rules the text out (more characters than frames), attention decides alone.
        gain = torch.where(
            self.prefix.isfinite().unsqueeze(1), prefix - self.prefix.unsqueeze(1), 0.0
        )
        scores = (1 - self.weight) * attention.gather(1, tokens) + self.weight * gain
        self._pending = tokens, r_n, prefix
        return tokens, scores.masked_fill(tokens == self.blank, float("-inf"))

    def advance(self, rows: Tensor, columns: Tensor) -> None:
        """Row i of the state becomes row `rows[i]` extended by its candidate `columns[i]` of
        the last `score`: greedy keeps every row, beam search reorders them."""
        if self._pending is None:
            raise RuntimeError("advance needs a score first")
        tokens, r_n, prefix = self._pending
        self._advance(tokens[rows, columns], r_n[rows, columns].unsqueeze(1))
        self.prefix = prefix[rows, columns]

    def _extend(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """For each candidate (b, k): r_n of the text extended by it, and its prefix log prob."""
        y = self.log_probs.gather(
            2, tokens.unsqueeze(1).expand(-1, self.log_probs.shape[1], -1)
        ).transpose(1, 2)  # (b, k, T)
        both = self.r_n.logaddexp(self.r_b).unsqueeze(1)
        # A repeated character needs a blank between: only paths ending in blank extend it.
        repeat = (tokens == self.last.unsqueeze(1)).unsqueeze(2)
        phi = torch.where(repeat, self.r_b.unsqueeze(1), both)
        start = 0.0 if self.empty else float("-inf")  # the empty text "ends" before frame 0
        before = _shift(phi, start)  # phi[t - 1]
        cumulative = y.cumsum(-1)
        r_n = cumulative + (before - _shift(cumulative, 0.0)).logcumsumexp(-1)
        return r_n, (before + y).logsumexp(-1)

    def _advance(self, chosen: Tensor, r_n: Tensor) -> None:
        r_n = r_n.squeeze(1)
        b = self.blank_cumsum
        self.r_b = b + (_shift(r_n - b, float("-inf"))).logcumsumexp(-1)
        self.r_n = r_n
        self.last = chosen
        self.empty = False
