"""The node's own web interface: pages, its login and live updates, on the REST API's address and port.

Nothing of the node shows without a session, and a session is opened only by a one-time token that
`bitdust gui` asks for with the API secret (session.py); the pages read the node through the REST
endpoints' own handlers (endpoints.py), never a room's private state.
"""
