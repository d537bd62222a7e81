"""Test helper: ``kartud run`` with its printer on the simulated USB backend; SIGUSR1 unplugs the cable, SIGUSR2 replugs.

No kernel here can fake a USB device, so the simulator lives in the daemon's process behind pyusb's
backend interface: the daemon, the Evolis driver and pyusb run their real code paths.
"""

from __future__ import annotations

import signal
import sys

from kartud.service import devices
from kartud.service import daemon as service
from kartud.service.cli import main
from kartud.rules.clock import Clock
from kartud.hw.printer.evolis import EvolisPrinter
from kartud.hw.printer.usb import UsbTransport
from kartud.hw.sim.evolis_sim import EvolisSim, SimSettings
from kartud.hw.sim.output import CardOutput
from kartud.hw.sim.usb_backend import SimUsbBackend


def build_devices(config, clock):
    sim = EvolisSim(Clock(), CardOutput(config.printer.sim.output_dir),
                    SimSettings(seconds_per_card=config.printer.sim.seconds_per_card, chip_cards=False))
    backend = SimUsbBackend(sim)
    signal.signal(signal.SIGUSR1, lambda *_: backend.unplug())
    signal.signal(signal.SIGUSR2, lambda *_: backend.replug())
    transport = UsbTransport(config.printer.usb_vendor_id, config.printer.usb_product_id,
                             transfer_timeout_s=config.printer.usb_timeout_s, backend=backend)
    return EvolisPrinter(transport, devices.printer_settings(config)), None


if __name__ == "__main__":
    devices.build_devices = service.build_devices = build_devices
    sys.exit(main(sys.argv[1:]))
