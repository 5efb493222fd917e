"""Pretrained weights: files a user provides in ``$SRCORE_WEIGHTS`` (``weights``), the official releases the papers use
(``releases``), and checkpoints in the public key layouts built into srcore's networks (``checkpoints``)."""
