"""The image-to-text network: a conv encoder, a transformer decoder, an optional CTC head."""

from typing import NamedTuple

from einops import rearrange
from torch import Tensor, nn

from text_recognizer.network.transformer.decoder import Decoder
from text_recognizer.network.transformer.position import sinusoidal_2d


class NetworkOutput(NamedTuple):
    logits: Tensor
    """(b, t, num_tokens): teacher-forced next-token logits."""
    ctc_logits: Tensor | None
    """(b, w, num_tokens) per encoder column, pad index as blank; None without a CTC head."""


class ConvTransformer(nn.Module):
    """Encoder feature map -> 2D positions -> memory sequence the decoder cross-attends to.

    The optional CTC head reads the same feature map, averaged over height, as an auxiliary loss
    that pushes the encoder to align columns with characters early in training.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: Decoder,
        encoder_dim: int,
        decoder_dim: int,
        num_tokens: int,
        pad_index: int,
        start_index: int,
        end_index: int,
        max_output_length: int,
        ctc_head: bool = False,
    ) -> None:
        super().__init__()
        if max_output_length > decoder.max_length:
            raise ValueError(
                f"max_output_length {max_output_length} exceeds the decoder's {decoder.max_length}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.to_memory = nn.Linear(encoder_dim, decoder_dim)
        self.ctc_head = nn.Linear(encoder_dim, num_tokens) if ctc_head else None
        self.num_tokens = num_tokens
        self.pad_index = pad_index
        self.start_index = start_index
        self.end_index = end_index
        self.max_output_length = max_output_length

    def memory(self, features: Tensor) -> Tensor:
        """(b, c, h, w) features -> (b, h * w, decoder_dim) with 2D sinusoidal positions."""
        _, _, h, w = features.shape
        x = self.to_memory(rearrange(features, "b c h w -> b (h w) c"))
        return x + sinusoidal_2d(h, w, x.shape[-1], x.device, x.dtype)

    def encode(self, images: Tensor) -> Tensor:
        """Images (b, c, H, W) -> memory (b, h * w, decoder_dim)."""
        return self.memory(self.encoder(images))

    def forward(self, images: Tensor, tokens: Tensor) -> NetworkOutput:
        """Teacher forcing: logits at every position of `tokens` (b, t), plus CTC logits."""
        features = self.encoder(images)
        logits = self.decoder(tokens, self.memory(features))
        if self.ctc_head is None:
            return NetworkOutput(logits, None)
        return NetworkOutput(logits, self.ctc_head(rearrange(features.mean(2), "b c w -> b w c")))

    def num_parameters(self) -> int:
        """Unique trainable parameters (tied embeddings counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
