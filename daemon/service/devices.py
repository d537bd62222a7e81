"""Choose the printer and encoder implementations that the configuration names."""

from __future__ import annotations

from kartud.hw.encoder import Encoder
from kartud.hw.printer import Printer
from kartud.hw.printer.evolis import EvolisPrinter, EvolisSettings
from kartud.hw.printer.panels import PanelSettings

from ..rules.card_types import has_chip



def printer_settings(config) -> EvolisSettings:
    """The Evolis driver's settings from ``[printer]``."""
    section = config.printer
    panels = PanelSettings(width=section.panel_width, height=section.panel_height, rotation=section.panel_rotation,
                           colour_bits=section.colour_bits, black_threshold=section.black_threshold,
                           no_varnish=tuple(section.overlay_no_varnish) or None)
    return EvolisSettings(panels=panels, ribbon=section.ribbon, reply_timeout_s=section.reply_timeout_s,
                          move_timeout_s=section.move_timeout_s, setup_commands=tuple(section.setup_commands),
                          status_command=section.status_command)


def _simulated_printer(config, clock, settings: EvolisSettings):
    """The in-process simulator, with the same panel geometry as the driver."""
    from kartud.hw.sim.evolis_sim import EvolisSim, SimSettings
    from kartud.hw.sim.output import CardOutput

    sim = config.printer.sim
    return EvolisSim(clock, CardOutput(config.sim_output_dir()), SimSettings(
        seconds_per_card=sim.seconds_per_card, feeder_cards=sim.feeder_cards, hopper_capacity=sim.hopper_capacity,
        reject_box_capacity=sim.reject_box_capacity, ribbon_prints=sim.ribbon_prints,
        cleaning_every=sim.cleaning_every, chip_cards=any(map(has_chip, config.station.card_types)),
        panels=settings.panels, status_command=settings.status_command))


def build_devices(config, clock) -> tuple[Printer, Encoder | None]:
    """The printer and (for chip cards) the encoder, as ``[printer]`` and ``[encoder]`` ask.

    Every transport drives the same Evolis driver; ``"sim"`` puts the simulated printer in this
    process, behind an in-memory pipe, and lets the encoder reach its contactless station.
    """
    from kartud.hw.printer.transport import MemoryTransport, SerialTransport
    from kartud.hw.printer.usb import UsbTransport

    settings = printer_settings(config)
    section = config.printer
    sim = None
    if section.transport == "sim":
        sim = _simulated_printer(config, clock, settings)
        transport = MemoryTransport(sim)
    elif section.transport == "serial":
        transport = SerialTransport(section.serial_port, section.serial_baud)
    else:
        transport = UsbTransport(section.usb_vendor_id, section.usb_product_id, transfer_timeout_s=section.usb_timeout_s)
    printer = EvolisPrinter(transport, settings)
    section = config.encoder
    if section.backend == "none":
        return printer, None
    if section.backend == "pcsc":
        # Nothing is asked of pcscd here: it may start after us, and the reader may come later
        # (the encoder's status says so, and the daemon raises encoder_disconnected meanwhile).
        from kartud.hw.pcsc import PcscChannel

        channel = PcscChannel(section.reader)
    else:
        from kartud.hw.sim.station import SimStationChannel

        channel = SimStationChannel(sim)
    return printer, Encoder(channel, timeout_s=section.timeout_s, chunk=section.chunk_bytes,
                            chip_capacity=section.chip_capacity_bytes)
