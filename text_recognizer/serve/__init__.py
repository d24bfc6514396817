"""The HTTP API (`text-recognizer serve`): recognition with dynamic batching, the model's
description, Prometheus metrics, and the web page at `/`. `app.create_app` builds it around a
`model.load_model`; `server.serve` runs it under uvicorn."""
