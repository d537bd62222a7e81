"""Devices behind small interfaces: the card printer, the chip encoder, the indicator; real and simulated.

Nothing here knows of jobs, MQTT or SQLite: the daemon hands devices images and bytes.
"""
