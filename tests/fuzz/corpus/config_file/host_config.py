"""KohakuRiver host configuration."""
from kohakuriver.utils.config import *

HOST_BIND_IP: str = "0.0.0.0"
HOST_PORT: int = 8000
HOST_REACHABLE_ADDRESS: str = "192.168.1.10"
OVERLAY_ENABLED: bool = True
OVERLAY_SUBNET: str = "10.128.0.0/12/6/14"
OVERLAY_VXLAN_ID = 100
OVERLAY_MTU = 1_450
STATE_DIR = '/var/lib/kohaku'
OVERLAY_API_TOKEN = None
UNKNOWN_LIST = [
  1, 2,
]

def config_gen():
    return globals()
