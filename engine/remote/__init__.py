"""The CLI through a running server: DuckDB lets one process hold a library, and while the dashboard
runs, that process is the server. It leaves a note in the data folder saying where it listens
(``record``); a command that finds it talks to the server's API (``client``) instead of opening the
library, and prints what it would have printed had it opened the library itself.
"""
