"""The HTTP/JSON gateway: uvicorn's HTTP/1.1 protocol in the server's event loop, calling the
services in-process through the same interceptors.
"""
