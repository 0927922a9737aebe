"""Training (PyTorch, ``train`` extra): config, losses, augmentation, engine, cross-validation, export."""
