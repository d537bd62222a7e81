"""kartud-sim and the demo: a simulated print room with a private broker, fake people and an office client."""
