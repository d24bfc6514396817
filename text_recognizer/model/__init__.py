"""LightningModules: training, validation and test loops around the plain networks."""
