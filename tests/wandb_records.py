"""The records of an offline W&B run (`run-<id>.wandb`), read back without the network.

wandb keeps no Python reader of its own since its core moved to Go; the file is a LevelDB-style
log (a 7-byte header, then 32 KiB blocks of records: crc32c, length, type, bytes) of
`wandb_internal_pb2.Record` messages, which is what `wandb sync` uploads.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import wandb
from wandb.proto import wandb_internal_pb2

HEADER = struct.Struct("<4sHB")  # ":W&B", magic, version
RECORD = struct.Struct("<IHB")  # crc32c, length, type
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    ident, _, _ = HEADER.unpack_from(data)
    assert ident == b":W&B", path
    offset, pending = HEADER.size, b""
    while offset + RECORD.size <= len(data):
        left = BLOCK - offset % BLOCK
        if left < RECORD.size:  # the rest of a block too short for a header is padding
            offset += left
            continue
        _, length, kind = RECORD.unpack_from(data, offset)
        if kind == 0 and length == 0:
            break
        chunk = data[offset + RECORD.size : offset + RECORD.size + length]
        offset += RECORD.size + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def artifacts(run_folder: Path) -> list[wandb_internal_pb2.ArtifactRecord]:
    """Every artifact an offline run folder (`wandb/offline-run-*`) logged.

    `run.finish()` returns before wandb's service has necessarily written the run's last records;
    `wandb.teardown()` returns only once the service has flushed every run and stopped.
    """
    wandb.teardown()
    (log,) = run_folder.glob("run-*.wandb")
    return [r.artifact for r in records(log) if r.WhichOneof("record_type") == "artifact"]
