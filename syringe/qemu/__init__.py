"""QEMU for lesson endpoints, shared by the local runtime and the wrapper launcher: the command line (pure,
command.py) and the VM process (process.py). Imports nothing else of Syringe."""
