"""bluezoo 1.0.2 with connection teardown, for the BLE tests (see docs/ble-testing.md).

bluezoo keeps a connection's GATT client objects after a disconnect (a second connect then
fails re-exporting them: EEXIST) and a disconnect requested by the peripheral side never
reaches the central. Real BlueZ does both. This launcher patches `Device.disconnect` so a
disconnect from either side marks both ends disconnected and removes the exported GATT
client objects, then runs bluezoo's own `main()` with the same arguments.
"""

import sys

from bluezoo import bluezoo
from bluezoo.log import logger
from bluezoo.device import Device


def _counterpart(dev):
    """The object for the other end of the link (the local adapter as seen by the peer)."""
    if dev.adapter is None or dev.peer_adapter is None:
        return None
    path = "%s/dev_%s" % (dev.peer_adapter.get_object_path(), dev.adapter.address.replace(":", "_"))
    return dev.peer_adapter.devices.get(path)


async def _teardown(dev):
    for link in list(dev.services.values()):
        try:
            dev.peer_adapter.mock.remove_object(link)
        except KeyError:
            pass
    dev.services.clear()
    if dev.services_resolved:
        await dev.ServicesResolved.set_async(False)
    if dev.connected:
        await dev.Connected.set_async(False)


async def _disconnect(self, uuid=None):
    self.connecting_task.cancel()
    logger.info(f"Disconnecting {self}")
    other = _counterpart(self)
    await _teardown(self)
    if other is not None and other is not self:
        await _teardown(other)


Device.disconnect = _disconnect

if __name__ == "__main__":
    sys.argv[0] = "bluezoo"
    sys.exit(bluezoo.main())
