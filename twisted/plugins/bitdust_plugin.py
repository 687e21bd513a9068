# twistd's dropin: the same ServiceMaker bitdust-node runs (bitdust_node.plugin imports nothing heavy)
from bitdust_node.plugin import SERVICE_MAKER as bitdust  # noqa: F401
