"""Datasets: download, verification, generation, torch Datasets and LightningDataModules."""
