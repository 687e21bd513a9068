from bitdust_node.cli.main import run

run()
