"""The kartud process: the loop, press, intake, commands, MQTT link, control socket, devices, annunciator, systemd glue."""
