from setuptools import find_packages, setup

# twisted.plugins is listed explicitly: it is Twisted's dropin folder, where our plugin lives
setup(packages=find_packages(include=["bitdust_node", "bitdust_node.*"]) + ["twisted.plugins"])
