# twistd's dropin: the same ServiceMaker bitdust-node runs (bitdust_node.launcher imports nothing heavy)
from bitdust_node.launcher import SERVICE_MAKER as bitdust  # noqa: F401
