"""Reading with exported graphs (`text_recognizer.inference.export`): onnxruntime for ONNX,
`torch.jit.load` for TorchScript, on the CPU, with the transform, batching and decoding loops
the network itself reads with, and the decoder the export was made for."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from text_recognizer.decode import (
    BeamOptions,
    LoopSetup,
    beam_loop,
    check_decoder,
    chooser,
    ctc_decode,
    greedy_loop,
    step_scorer,
)
from text_recognizer.errors import CheckpointError
from text_recognizer.inference.models.manifest import STEP_IO, read_manifest
from text_recognizer.inference.recognizer import Recognizer


class ExportedRecognizer(Recognizer):
    """Reads images with exported files (onnxruntime for ONNX, `torch.jit.load` for
    TorchScript), on the CPU, with the same transform, batching and greedy loop (or beam search)
    as the network, and the decoder the export was made for (`decoder`: None, or that one)."""

    def __init__(
        self,
        folder: str | Path,
        max_length: int | None = None,
        batch_size: int | None = None,
        beam: BeamOptions | None = None,
        decoder: str | None = None,
    ) -> None:
        folder = Path(folder)
        manifest = read_manifest(folder)
        if decoder is not None and decoder != manifest.decoder:
            check_decoder(decoder, True, folder)  # an unknown name is refused as such
            raise CheckpointError(
                folder,
                f"was exported for --decoder {manifest.decoder}; export it with --decoder "
                f"{decoder}",
            )
        limit = manifest.max_length
        if max_length is not None and max_length > limit:
            raise CheckpointError(folder, f"max length {max_length} exceeds the exported {limit}")
        super().__init__(
            manifest.tokenizer,
            manifest.transform,
            max_length or limit,
            manifest.decoder,
            batch_size,
            beam,
        )
        runtime = _OnnxRuntime if manifest.runtime == "onnx" else _TorchScriptRuntime
        try:
            self.runtime = runtime(*manifest.files)
        except ModuleNotFoundError as error:
            raise CheckpointError(folder, needs_export_extra(error)) from error
        self.cache = manifest.cache
        self.ctc_decode_weight = manifest.ctc_decode_weight

    def decode(self, images: Tensor, beam: BeamOptions | None = None) -> Tensor:
        batch, width = images.shape[0], beam.width if beam else 1
        outputs = [torch.as_tensor(o) for o in self.runtime.encode(images)]
        setup = LoopSetup(
            batch,
            torch.device("cpu"),
            self.tokenizer.start_index,
            self.tokenizer.end_index,
            self.tokenizer.pad_index,
        )
        if self.decoder == "ctc":
            return ctc_decode(outputs[0], setup, self.max_length, beam)
        # Beam search: each image's hypotheses are `width` consecutive rows.
        cross = [o.repeat_interleave(width, 1) for o in outputs[:2]]
        ctc = [o.repeat_interleave(width, 0) for o in outputs[2:]]
        layers, kv_heads, dim_head = (self.cache[k] for k in ("layers", "kv_heads", "dim_head"))
        shape = (layers, batch * width, kv_heads, 0, dim_head)
        cache = (torch.zeros(shape), torch.zeros(shape))

        def next_logits(tokens: Tensor, pos: int) -> Tensor:
            nonlocal cache
            logits, *new = self.runtime.step(tokens[:, pos : pos + 1], pos, *cache, *cross)
            cache = (new[0], new[1])
            return logits

        def reorder(rows: Tensor) -> None:
            nonlocal cache
            cache = (cache[0][:, rows], cache[1][:, rows])

        ctc_log_probs = ctc[0] if ctc else None
        weight, blank, end = self.ctc_decode_weight, setup.pad_index, setup.end_index
        if beam is None:
            choose = chooser(ctc_log_probs, weight, blank, end)
            return greedy_loop(next_logits, setup, self.max_length, choose=choose)
        scorer = step_scorer(ctc_log_probs, weight, blank, end)
        return beam_loop(next_logits, reorder, setup, self.max_length, scorer, beam)


def needs_export_extra(error: ModuleNotFoundError) -> str:
    """What to do about an exporter or a runtime that is not installed."""
    return f"needs {error.name}: pip install 'text-recognizer[export]'"


class _OnnxRuntime:
    """onnxruntime sessions on the CPU, with as many threads as torch uses."""

    def __init__(self, *paths: Path) -> None:
        """The encoder's file, then the step's if there is one."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.sessions = []
        for path in paths:
            try:
                self.sessions.append(
                    onnxruntime.InferenceSession(
                        str(path), options, providers=["CPUExecutionProvider"]
                    )
                )
            except Exception as error:  # onnxruntime raises its own untyped errors
                raise CheckpointError(path, f"not a loadable ONNX model ({error})") from error

    def encode(self, images: Tensor) -> list[np.ndarray]:
        return self.sessions[0].run(None, {"images": np.ascontiguousarray(images.numpy())})

    def step(self, token: Tensor, pos: int, *caches: Tensor | np.ndarray) -> list[Tensor]:
        inputs = [np.ascontiguousarray(token.numpy()), np.array(pos, dtype=np.int64)]
        inputs += [c.numpy() if isinstance(c, Tensor) else c for c in caches]
        outputs = self.sessions[1].run(None, dict(zip(STEP_IO[0], inputs, strict=True)))
        return [torch.from_numpy(o) for o in outputs]


class _TorchScriptRuntime:
    def __init__(self, *paths: Path) -> None:
        """The encoder's file, then the step's if there is one."""
        self.modules = []
        for path in paths:
            try:
                with warnings.catch_warnings():  # deprecated in favour of torch.export
                    warnings.simplefilter("ignore", FutureWarning)
                    self.modules.append(torch.jit.load(str(path), map_location="cpu"))
            except RuntimeError as error:
                raise CheckpointError(path, f"not a loadable TorchScript file ({error})") from error

    @torch.inference_mode()
    def encode(self, images: Tensor) -> list[Tensor]:
        return list(self.modules[0](images))

    @torch.inference_mode()
    def step(self, token: Tensor, pos: int, *caches: Tensor) -> list[Tensor]:
        return list(self.modules[1](token, torch.tensor(pos), *caches))
