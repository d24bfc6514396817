"""The image-to-text network: a conv encoder, a transformer decoder, an optional CTC head."""

from typing import ClassVar, NamedTuple

import torch.nn.functional as F  # noqa: N812
from einops import rearrange
from torch import Tensor, nn

from text_recognizer.network.transformer.decoder import Decoder
from text_recognizer.network.transformer.position import sinusoidal_2d


class NetworkOutput(NamedTuple):
    logits: Tensor
    """(b, t, num_tokens): teacher-forced next-token logits."""
    ctc_logits: Tensor | None
    """(b, h * w, num_tokens) per encoder position in reading order (row by row, each left to
    right; a line's features are one row), pad index as blank; None without a CTC head."""


class ConvTransformer(nn.Module):
    """Encoder feature map -> 2D positions -> memory sequence the decoder cross-attends to.

    The optional CTC head reads the same feature map in reading order, row by row, as an
    auxiliary loss that pushes the encoder to align positions with characters early in training:
    a line network's map is one row of columns, and a page network whose rows are one text line
    high reads each line in its row. It can also feed its reading into the memory (`ctc_memory`)
    and take a share in each greedy choice (`ctc_decode_weight`, see `text_recognizer.ctc_prefix`).

    The widths in between are read off the parts (the encoder's `out_dim`, the decoder's `dim`),
    so a config cannot state them wrong. Training passes the tokenizer's size and special indices
    and the datamodule's output length (`training/run.py`), so configs need not repeat them.
    """

    TOKEN_ROWS: ClassVar[tuple[str, ...]] = (
        "decoder.token_emb.weight",
        "decoder.to_logits.weight",
        "decoder.to_logits.bias",
        "ctc_head.weight",
        "ctc_head.bias",
    )
    """The tensors whose rows are tokens (by the tokenizer's index): a changed charset moves them
    row by row (`text_recognizer.model.transfer`)."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: Decoder,
        num_tokens: int,
        pad_index: int,
        start_index: int,
        end_index: int,
        max_output_length: int,
        ctc_head: bool = False,
        ctc_memory: bool = False,
        ctc_decode_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if max_output_length > decoder.max_length:
            raise ValueError(
                f"max_output_length {max_output_length} exceeds the decoder's {decoder.max_length}"
            )
        encoder_dim = getattr(encoder, "out_dim", None)
        if not isinstance(encoder_dim, int):
            raise ValueError(f"the encoder ({type(encoder).__name__}) has no out_dim")
        self.encoder = encoder
        self.decoder = decoder
        self.to_memory = nn.Linear(encoder_dim, decoder.dim)
        self.ctc_head = nn.Linear(encoder_dim, num_tokens) if ctc_head else None
        if (ctc_memory or ctc_decode_weight) and not ctc_head:
            raise ValueError("ctc_memory and ctc_decode_weight need ctc_head: true")
        if not 0 <= ctc_decode_weight <= 1:
            raise ValueError(f"ctc_decode_weight must be in [0, 1], got {ctc_decode_weight}")
        self.ctc_memory = ctc_memory
        self.ctc_decode_weight = ctc_decode_weight
        self.num_tokens = num_tokens
        self.pad_index = pad_index
        self.start_index = start_index
        self.end_index = end_index
        self.max_output_length = max_output_length

    def ctc_logits(self, features: Tensor) -> Tensor | None:
        """(b, c, h, w) features -> (b, h * w, num_tokens) in reading order, or None without the
        head."""
        if self.ctc_head is None:
            return None
        return self.ctc_head(rearrange(features, "b c h w -> b (h w) c"))

    def memory(self, features: Tensor, ctc_logits: Tensor | None = None) -> Tensor:
        """(b, c, h, w) features -> (b, h * w, decoder dim) with 2D sinusoidal positions.

        With `ctc_memory`, each position also carries the CTC head's reading of it, as the mean
        of the decoder's token embeddings under its posterior: a query can then find where the
        character it just emitted was read, so cross-attention learns to align sooner.
        """
        _, _, h, w = features.shape
        x = self.to_memory(rearrange(features, "b c h w -> b (h w) c"))
        if self.ctc_memory:
            if ctc_logits is None:
                ctc_logits = self.ctc_logits(features)
            assert ctc_logits is not None
            reading = ctc_logits.softmax(-1) @ self.decoder.token_emb.weight
            x = x + F.rms_norm(reading, reading.shape[-1:])
        return x + sinusoidal_2d(h, w, x.shape[-1], x.device, x.dtype)

    def encode(self, images: Tensor) -> Tensor:
        """Images (b, c, H, W) -> memory (b, h * w, decoder dim)."""
        return self.encode_for_decoding(images)[0]

    def encode_for_decoding(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """The memory, and the CTC head's log probabilities (b, w, num_tokens) if decoding
        weighs them in (`ctc_decode_weight` > 0), else None."""
        features = self.encoder(images)
        ctc_logits = self.ctc_logits(features)
        memory = self.memory(features, ctc_logits)
        if ctc_logits is None or self.ctc_decode_weight == 0:
            return memory, None
        return memory, ctc_logits.float().log_softmax(-1)

    def ctc_log_probs(self, images: Tensor) -> Tensor:
        """The CTC head's log probabilities (b, h * w, num_tokens) alone, for reading with the
        head without the decoder: the encoder and the head, no memory."""
        ctc_logits = self.ctc_logits(self.encoder(images))
        if ctc_logits is None:
            raise ValueError("the network has no CTC head (ctc_head: false)")
        return ctc_logits.float().log_softmax(-1)

    def forward(self, images: Tensor, tokens: Tensor) -> NetworkOutput:
        """Teacher forcing: logits at every position of `tokens` (b, t), plus CTC logits."""
        features = self.encoder(images)
        ctc_logits = self.ctc_logits(features)
        return NetworkOutput(self.decoder(tokens, self.memory(features, ctc_logits)), ctc_logits)

    def num_parameters(self) -> int:
        """Unique trainable parameters (tied embeddings counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
