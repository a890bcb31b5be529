"""The operator's tools' shared parts: how the admin API and the CLI parse an operator's input and
render what the services return (plain data; no web framework, no command-line library)."""
