"""Device profiles (Raspberry Pi, Jetson, x86), `fer-edge doctor` and `fer-edge deploy`."""

from fer_edge.devices.profiles import PROFILES, DeviceProfile

__all__ = ["PROFILES", "DeviceProfile"]
