"""Training: the data stream, the LightningModule, its losses and its callbacks."""
