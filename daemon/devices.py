"""Choose the printer and encoder implementations that the configuration names."""

from __future__ import annotations

from kartud.hw.encoder import Encoder
from kartud.hw.printer import Printer


class DeviceSetupError(Exception):
    """The configured device cannot be used; the message says which key to change."""


def build_devices(config, clock) -> tuple[Printer, Encoder | None]:
    """The printer and (for chip cards) the encoder, as ``[printer]`` and ``[encoder]`` ask."""
    transport = config.printer.transport
    if transport != "sim":
        raise DeviceSetupError(f'printer.transport = "{transport}": the Evolis driver is not part of this version '
                               'yet; use "sim"')
    from kartud.hw.sim.printer import SimPrinter

    printer = SimPrinter(clock, config.sim_output_dir(), seconds_per_card=config.printer.sim.seconds_per_card,
                         feeder_cards=config.printer.sim.feeder_cards,
                         chip_cards="KTP_EL" in config.station.card_types)
    backend = config.encoder.backend
    if backend == "none":
        return printer, None
    if backend == "pcsc":
        raise DeviceSetupError('encoder.backend = "pcsc": the PC/SC encoder is not part of this version yet; '
                               'use "sim" (with the simulated printer) or "none"')
    return printer, Encoder(printer.station_channel(), timeout_s=config.encoder.timeout_s)
