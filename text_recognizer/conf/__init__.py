"""The library's Hydra configs, shipped in the wheel: `datamodule/` is the one home of each
dataset's values. A package (not a bare folder) because Hydra's `pkg://` search path needs one."""
