"""Running the app under uvicorn: one process, or `workers` processes that each load the model
(uvicorn's worker manager restarts one that dies)."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from typing import Any

import torch
import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

from text_recognizer.serve.app import create_app
from text_recognizer.serve.model import load_model
from text_recognizer.serve.settings import Settings

WORKER_ENV = "TEXT_RECOGNIZER_SERVE_WORKER"
"""How worker processes get the model and settings: JSON in the environment they inherit."""


def serve(
    settings: Settings,
    reference: str,
    device: str = "cpu",
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    threads: int | None = None,
    decoder: str | None = None,
) -> None:
    """Load the model `reference` names here first, so that a bad one is one line and no
    server starts. `threads`: torch's threads per process (default: `default_threads`);
    `decoder`: what every request is read with (None: the model's own)."""
    threads = threads or default_threads(workers)
    torch.set_num_threads(threads)
    model = load_model(reference, device, decoder=decoder)
    app = create_app(model, settings)
    options: dict[str, Any] = {"host": host, "port": port, "log_config": log_config()}
    # Successful requests are counted in /metrics; each failed one logs its own line.
    options["access_log"] = False
    if workers == 1:
        uvicorn.run(app, **options)
        return
    os.environ[WORKER_ENV] = json.dumps(
        {
            "settings": dataclasses.asdict(settings),
            "model": model.info["source"],  # fetched already: the workers read the local copy
            "device": device,
            "threads": threads,
            "decoder": decoder,
        }
    )
    # A worker imports torch and loads the model before it answers the manager's health check,
    # which takes longer than uvicorn's 5 s default on a busy machine.
    uvicorn.run(
        f"{__name__}:worker_app",
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=60,
        **options,
    )


def default_threads(workers: int = 1) -> int:
    """One core left to the event loop and the stems, the rest shared among the workers: on 2
    cores, decoding on 1 thread served both more requests per second and faster single requests
    than on 2 (`make loadtest`), where the decoder's threads had to share a core."""
    return max(1, (torch.get_num_threads() - 1) // workers)


def worker_app() -> FastAPI:
    """The app of one of several worker processes, which share the cores between them."""
    config = json.loads(os.environ[WORKER_ENV])
    torch.set_num_threads(config["threads"])
    settings = config["settings"]
    settings["cors_origins"] = tuple(settings["cors_origins"])
    model = load_model(config["model"], config["device"], decoder=config["decoder"])
    return create_app(model, Settings(**settings))


def log_config() -> dict[str, Any]:
    """uvicorn's own, with this package's error lines in the same format."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["text_recognizer.serve"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return config
