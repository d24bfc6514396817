"""Joint CTC/attention scores of the next token, kept per hypothesis (greedy: one per image;
beam search: several, reordered as the beam moves).

The attention decoder proposes its most likely next tokens; each is rescored by how likely the
CTC head makes the text so far followed by it (the CTC prefix probability). CTC is monotonic, so
the joint choice cannot repeat or skip a stretch of the line, the attention decoder's typical
failures, while the decoder still brings its context to each character.

The prefix probabilities follow the usual forward recursion over the CTC frames, kept per image
for the current text: `r_n[t]`, `r_b[t]` are the log probabilities that frames 0..t produce the
text with the last frame non-blank or blank. Extending by a token is a first-order linear
recurrence over t, computed here in closed form with `logcumsumexp` instead of a loop over frames,
and only for the token each row goes on with: a candidate's score needs its prefix probability
alone, a sum over frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor


def _shift(x: Tensor, first: float) -> Tensor:
    """x[..., t - 1] at t, `first` at t = 0."""
    return F.pad(x[..., :-1], (1, 0), value=first)


class CTCPrefixScorer:
    """Rescores the decoder's top `candidates` next tokens with CTC prefix probabilities.

    `log_probs` (b, T, V) are the CTC head's per-frame log probabilities; `weight` (0, 1] is the
    CTC share of the score (without a share, decode by argmax). Call `choose` once per step, or
    `score` then `advance` (beam search).
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
        # (b, V, T): a token's frames side by side, indexed each step by the candidates.
        self.by_token = log_probs.double().transpose(1, 2).contiguous()
        self.blank = blank
        self.end_index = end_index
        self.weight = weight
        self.candidates = min(candidates, log_probs.shape[-1] - 1)
        b, device = log_probs.shape[0], log_probs.device
        self.blank_cumsum = self.by_token[:, blank].cumsum(-1)  # (b, T)
        self.r_n = torch.full_like(self.blank_cumsum, float("-inf"))
        self.r_b = self.blank_cumsum.clone()
        self.prefix = torch.zeros(b, dtype=torch.float64, device=device)
        self.last = torch.full((b,), -1, dtype=torch.long, device=device)
        self.empty = True
        self.rows = torch.arange(b, device=device)
        self._pending: tuple[Tensor, Tensor, Tensor, Tensor] | None = None

    def choose(self, logits: Tensor) -> Tensor:
        """The next token (b,) for the decoder's `logits` (b, V), and the state advanced to it."""
        tokens, scores = self.score(logits, self.candidates)
        best = scores.argmax(1)
        self.advance(self.rows, best)
        return tokens.gather(1, best.unsqueeze(1)).squeeze(1)

    def score(self, logits: Tensor, count: int) -> tuple[Tensor, Tensor]:
        """The decoder's top `count` (at least `candidates`) next tokens (b, c) per row and their
        joint scores (b, c): the attention log probability and the CTC prefix gain, weighted.
        The extensions are kept until `advance` picks the ones to go on with."""
        attention = logits.double().log_softmax(-1)
        attention[:, self.blank] = float("-inf")  # padding, CTC's blank: never a next token
        count = min(max(count, self.candidates), attention.shape[-1] - 1)
        tokens = attention.topk(count, dim=-1).indices  # (b, c)
        before, frames, prefix = self._extend(tokens)  # (b, c, T), (b, c, T), (b, c)
        ended = self.r_n[:, -1].logaddexp(self.r_b[:, -1]).unsqueeze(1).expand_as(prefix)
        prefix = torch.where(tokens == self.end_index, ended, prefix)
        # Once CTC rules the text out (more characters than frames), attention decides alone.
        gain = torch.where(
            self.prefix.isfinite().unsqueeze(1), prefix - self.prefix.unsqueeze(1), 0.0
        )
        scores = (1 - self.weight) * attention.gather(1, tokens) + self.weight * gain
        self._pending = tokens, before, frames, prefix
        return tokens, scores.masked_fill(tokens == self.blank, float("-inf"))

    def advance(self, rows: Tensor, columns: Tensor) -> None:
        """Row i of the state becomes row `rows[i]` extended by its candidate `columns[i]` of
        the last `score`: greedy keeps every row, beam search reorders them."""
        if self._pending is None:
            raise RuntimeError("advance needs a score first")
        tokens, before, frames, prefix = self._pending
        self._advance(tokens[rows, columns], before[rows, columns], frames[rows, columns])
        self.prefix = prefix[rows, columns]

    def _extend(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """For each candidate (b, k): the log probability that the text so far ends before
        frame t (b, k, T), the candidate's frame log probabilities (b, k, T), and the prefix log
        probability of the text extended by it (b, k)."""
        frames = self.by_token[self.rows.unsqueeze(1), tokens]
        both = self.r_n.logaddexp(self.r_b).unsqueeze(1)
        # A repeated character needs a blank between: only paths ending in blank extend it.
        repeat = (tokens == self.last.unsqueeze(1)).unsqueeze(2)
        phi = torch.where(repeat, self.r_b.unsqueeze(1), both)
        start = 0.0 if self.empty else float("-inf")  # the empty text "ends" before frame 0
        before = _shift(phi, start)  # phi[t - 1]
        return before, frames, (before + frames).logsumexp(-1)

    def _advance(self, chosen: Tensor, before: Tensor, frames: Tensor) -> None:
        """The state of each row's text extended by its chosen token, of `_extend`'s `before`
        and `frames` (b, T) for that token."""
        cumulative = frames.cumsum(-1)
        self.r_n = cumulative + (before - _shift(cumulative, 0.0)).logcumsumexp(-1)
        b = self.blank_cumsum
        self.r_b = b + (_shift(self.r_n - b, float("-inf"))).logcumsumexp(-1)
        self.last = chosen
        self.empty = False
