"""Simulated devices that behave like the real ones: a card printer, chip cards, the encoder's station."""
