from twisted.application.service import ServiceMaker

bitdust = ServiceMaker("bitdust", "bitdust_node.tap", "A BitDust node: DHT, identity server, proxy, storage", "bitdust")
