"""The engine: the plugin contract (generators, effects, recipes, hooks), the plugin host, the
catalogue of loaded generators, request validation and the media codecs. Imports neither grpc
nor the server, gateway or jobs.
"""
