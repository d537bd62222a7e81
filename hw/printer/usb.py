"""The printer on USB: the printer class interface (7) through pyusb, bulk OUT for commands, bulk IN for replies."""

from __future__ import annotations

import logging

from .transport import Transport, TransportGone

log = logging.getLogger("kartud.printer.usb")

PRINTER_CLASS = 7
EVOLIS_VENDOR_ID = 0x0F49
WRITE_CHUNK = 16384          # bytes a bulk OUT transfer: each gets its own timeout, so a panel cannot stall silently


def _is_printer_interface(interface) -> bool:
    return interface.bInterfaceClass == PRINTER_CLASS


class UsbTransport(Transport):
    """The first USB device of ``vendor_id`` (and ``product_id``, unless 0) with a printer-class interface.

    The kernel's ``usblp`` driver is detached from that interface if bound (it would own the
    endpoints). ``backend`` is a pyusb backend; None lets pyusb pick libusb. ``transfer_timeout_s``
    bounds each bulk transfer.
    """

    def __init__(self, vendor_id: int = EVOLIS_VENDOR_ID, product_id: int = 0, transfer_timeout_s: float = 5.0,
                 backend=None):
        self.vendor_id = vendor_id
        self.product_id = product_id
        self.transfer_timeout_s = transfer_timeout_s
        self.backend = backend
        self.description = f"USB {vendor_id:04x}:{product_id:04x}" if product_id else f"USB {vendor_id:04x}:*"
        self._device = None
        self._interface = None
        self._out = None
        self._in = None

    @property
    def is_open(self) -> bool:
        return self._device is not None

    def open(self) -> None:
        import usb.core
        import usb.util

        match = {"idVendor": self.vendor_id}
        if self.product_id:
            match["idProduct"] = self.product_id
        try:
            device = usb.core.find(backend=self.backend, custom_match=self._has_printer_interface, **match)
        except (usb.core.NoBackendError, usb.core.USBError) as exc:
            raise TransportGone(f"cannot look for the printer on USB: {exc}") from None
        if device is None:
            raise TransportGone(f"no printer-class device {self.description} on USB")
        try:
            self._claim(device)
        except usb.core.USBError as exc:
            usb.util.dispose_resources(device)
            raise TransportGone(f"cannot claim the printer {self.description}: {exc}") from None
        log.info("printer found on USB: %s", self.description)

    @staticmethod
    def _has_printer_interface(device) -> bool:
        import usb.core

        try:
            return any(_is_printer_interface(i) for config in device for i in config)
        except usb.core.USBError:
            return False

    def _claim(self, device) -> None:
        import usb.core
        import usb.util

        try:
            config = device.get_active_configuration()
        except usb.core.USBError:       # not configured yet
            config = None
        if config is None:
            device.set_configuration()
            config = device.get_active_configuration()
        interface = usb.util.find_descriptor(config, custom_match=_is_printer_interface)
        number = interface.bInterfaceNumber
        try:
            if device.is_kernel_driver_active(number):
                device.detach_kernel_driver(number)
                log.info("detached the kernel's driver from the printer's interface %d", number)
        except NotImplementedError:     # a backend without kernel drivers
            pass
        usb.util.claim_interface(device, number)
        direction = usb.util.endpoint_direction

        def bulk(wanted):
            return usb.util.find_descriptor(interface, custom_match=lambda e: direction(e.bEndpointAddress) == wanted
                                            and usb.util.endpoint_type(e.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK)

        self._out, self._in = bulk(usb.util.ENDPOINT_OUT), bulk(usb.util.ENDPOINT_IN)
        if self._out is None or self._in is None:
            usb.util.release_interface(device, number)
            raise usb.core.USBError("the printer interface has no bulk OUT and IN endpoints")
        self._device, self._interface = device, number

    def close(self) -> None:
        import usb.core
        import usb.util

        device, self._device = self._device, None
        if device is None:
            return
        try:
            usb.util.release_interface(device, self._interface)
        except (usb.core.USBError, ValueError):
            pass                         # an unplugged device cannot be released; it is gone either way
        usb.util.dispose_resources(device)

    def _require(self):
        if self._device is None:
            raise TransportGone(f"{self.description} is not open")

    def write(self, data: bytes, timeout_s: float) -> None:
        import usb.core

        self._require()
        timeout_ms = int(max(timeout_s, self.transfer_timeout_s) * 1000)
        view = memoryview(data)
        try:
            for start in range(0, len(view), WRITE_CHUNK):
                chunk = view[start:start + WRITE_CHUNK]
                written = self._out.write(chunk, timeout_ms)
                if written != len(chunk):
                    raise TransportGone(f"{self.description} took {written} of {len(chunk)} bytes")
        except usb.core.USBTimeoutError:
            raise TransportGone(f"{self.description} did not take the data within {timeout_ms} ms") from None
        except usb.core.USBError as exc:
            raise self._gone(exc) from None

    def read(self, timeout_s: float) -> bytes:
        import usb.core

        self._require()
        try:
            # A zero timeout means "for ever" to libusb: the shortest real wait is 1 ms.
            return bytes(self._in.read(self._in.wMaxPacketSize * 8, max(1, int(timeout_s * 1000))))
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as exc:
            raise self._gone(exc) from None

    def _gone(self, exc) -> TransportGone:
        # Any other USB error (ENODEV when unplugged, EIO, EPIPE) leaves the link unusable: reopen it.
        return TransportGone(f"{self.description}: {exc.strerror or exc}")
