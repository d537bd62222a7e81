"""A pyusb backend that emulates one Evolis printer on USB (printer class, bulk OUT 0x01 / IN 0x82) over a simulator."""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass, field
from queue import Queue

import usb.backend
import usb.core

VENDOR_ID, PRODUCT_ID = 0x0F49, 0x0A00       # the one Evolis product id in usb.ids ("Zenius")
EP_OUT, EP_IN, MAX_PACKET = 0x01, 0x82, 64
STRINGS = {1: "Evolis", 2: "Primacy SIM", 3: "SIM0001"}  # the product string has a space, as real ones do
GET_DESCRIPTOR, STRING_DESCRIPTOR = 6, 3


@dataclass
class _Descriptor:
    """Any USB descriptor: pyusb reads the attributes it needs."""

    fields: dict = field(default_factory=dict)
    extra_descriptors: list = field(default_factory=list)

    def __getattr__(self, name):
        try:
            return self.__dict__["fields"][name]
        except KeyError:
            raise AttributeError(name) from None


class _Link:
    """One plugged-in session with the simulator: a worker thread feeds it what the host writes and
    queues its answers for bulk IN, as the printer's own processor would."""

    def __init__(self, device, address: int):
        self.device = device
        self.address = address
        self.alive = True
        self.kernel_driver = True           # usblp is bound until the host detaches it
        self.claimed = False
        self.configuration = 0
        self._inbox: Queue[bytes | None] = Queue()
        self._answers = bytearray()
        self._ready = threading.Condition()
        self._worker = threading.Thread(target=self._work, name="kartud-sim-usb", daemon=True)
        self._worker.start()

    def _work(self) -> None:
        while (data := self._inbox.get()) is not None:
            answer = self.device.feed(data)
            with self._ready:
                if self.alive and answer:
                    self._answers += answer
                    self._ready.notify_all()

    def write(self, data: bytes) -> None:
        self._inbox.put(data)

    def read(self, size: int, timeout_s: float) -> bytes:
        with self._ready:
            if not self._ready.wait_for(lambda: self._answers or not self.alive, timeout_s):
                raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)
            if not self.alive:
                raise _no_device()
            data = bytes(self._answers[:size])
            del self._answers[:size]
            return data

    def end(self) -> None:
        with self._ready:
            self.alive = False
            self._ready.notify_all()
        # Bytes already sent reach the printer (its processor finishes them), as on a real cable pull.
        self._inbox.put(None)


def _no_device() -> usb.core.USBError:
    return usb.core.USBError("No such device (it may have been disconnected)", -4, errno.ENODEV)


class SimUsbBackend(usb.backend.IBackend):
    """One simulated printer for ``usb.core.find(backend=...)``; :meth:`unplug` and :meth:`replug` pull
    and reconnect its cable (the printer, and any card inside, stay as they are).

    >>> import usb.core
    >>> class Silent:
    ...     def feed(self, data): return b""
    >>> backend = SimUsbBackend(Silent())
    >>> usb.core.find(idVendor=0x0F49, backend=backend).product
    'Primacy SIM'
    """

    def __init__(self, device, vendor_id: int = VENDOR_ID, product_id: int = PRODUCT_ID):
        self.device = device
        self.vendor_id, self.product_id = vendor_id, product_id
        self._address = 1
        self._link: _Link | None = _Link(device, self._address)
        self._lock = threading.Lock()

    @property
    def plugged(self) -> bool:
        return self._link is not None

    def unplug(self) -> None:
        with self._lock:
            link, self._link = self._link, None
        if link is not None:
            link.end()

    def replug(self) -> None:
        with self._lock:
            if self._link is None:
                self._address += 1           # a new enumeration gets a new address
                self._link = _Link(self.device, self._address)

    def _live(self, link: _Link) -> _Link:
        if not link.alive or link is not self._link:
            raise _no_device()
        return link

    # -- enumeration and descriptors ----------------------------------------------------------------

    def enumerate_devices(self):
        link = self._link
        return [link] if link is not None else []

    def get_device_descriptor(self, dev):
        return _Descriptor(dict(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0, bDeviceProtocol=0,
            bMaxPacketSize0=64, idVendor=self.vendor_id, idProduct=self.product_id, bcdDevice=0x0100,
            iManufacturer=1, iProduct=2, iSerialNumber=3, bNumConfigurations=1, address=dev.address, bus=1,
            port_number=1, port_numbers=(1,), speed=2))

    def get_configuration_descriptor(self, dev, config):
        if config != 0:
            raise IndexError("only one configuration")
        return _Descriptor(dict(bLength=9, bDescriptorType=2, wTotalLength=32, bNumInterfaces=1,
                                bConfigurationValue=1, iConfiguration=0, bmAttributes=0xC0, bMaxPower=1))

    def get_interface_descriptor(self, dev, intf, alt, config):
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError("only one interface")
        # Printer class, printer subclass, bidirectional protocol.
        return _Descriptor(dict(bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=0,
                                bNumEndpoints=2, bInterfaceClass=7, bInterfaceSubClass=1, bInterfaceProtocol=2,
                                iInterface=0))

    def get_endpoint_descriptor(self, dev, ep, intf, alt, config):
        if (intf, alt, config) != (0, 0, 0) or ep not in (0, 1):
            raise IndexError("no such endpoint")
        return _Descriptor(dict(bLength=7, bDescriptorType=5, bEndpointAddress=(EP_OUT, EP_IN)[ep],
                                bmAttributes=2, wMaxPacketSize=MAX_PACKET, bInterval=0, bRefresh=0,
                                bSynchAddress=0))

    # -- the device in use --------------------------------------------------------------------------

    def open_device(self, dev):
        return self._live(dev)

    def close_device(self, dev_handle):
        pass

    def set_configuration(self, dev_handle, config_value):
        self._live(dev_handle).configuration = config_value

    def get_configuration(self, dev_handle):
        return self._live(dev_handle).configuration

    def set_interface_altsetting(self, dev_handle, intf, altsetting):
        self._live(dev_handle)

    def claim_interface(self, dev_handle, intf):
        link = self._live(dev_handle)
        if link.kernel_driver:
            raise usb.core.USBError("Resource busy", -6, errno.EBUSY)
        link.claimed = True

    def release_interface(self, dev_handle, intf):
        self._live(dev_handle).claimed = False

    def is_kernel_driver_active(self, dev_handle, intf):
        return self._live(dev_handle).kernel_driver

    def detach_kernel_driver(self, dev_handle, intf):
        self._live(dev_handle).kernel_driver = False

    def attach_kernel_driver(self, dev_handle, intf):
        self._live(dev_handle).kernel_driver = True

    def bulk_write(self, dev_handle, ep, intf, data, timeout):
        link = self._live(dev_handle)
        if ep != EP_OUT or not link.claimed:
            raise usb.core.USBError("Invalid parameter", -2, errno.EINVAL)
        link.write(bytes(data))
        return len(data)

    def bulk_read(self, dev_handle, ep, intf, buff, timeout):
        link = self._live(dev_handle)
        if ep != EP_IN or not link.claimed:
            raise usb.core.USBError("Invalid parameter", -2, errno.EINVAL)
        data = link.read(len(buff), (timeout or 1000) / 1000)
        buff[:len(data)] = type(buff)(buff.typecode, data)
        return len(data)

    def ctrl_transfer(self, dev_handle, bmRequestType, bRequest, wValue, wIndex, data, timeout):
        self._live(dev_handle)
        if bRequest != GET_DESCRIPTOR or wValue >> 8 != STRING_DESCRIPTOR:
            raise usb.core.USBError("Pipe error", -9, errno.EPIPE)
        index = wValue & 0xFF
        text = "\u0409" if index == 0 else STRINGS.get(index)   # index 0: the language ids (en-US)
        if text is None:
            raise usb.core.USBError("Pipe error", -9, errno.EPIPE)
        encoded = text.encode("utf-16-le")
        descriptor = bytes([2 + len(encoded), STRING_DESCRIPTOR]) + encoded
        count = min(len(descriptor), len(data))
        data[:count] = type(data)(data.typecode, descriptor[:count])
        return count
