"""kartud's service: config, store, jobs, scheduler, press, commands, MQTT, and the command-line tools."""

__version__ = "0.1.0"
