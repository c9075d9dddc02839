"""Moving one file to many hosts: what the engines share (common), the wave, the pipelined
chains (the chain package), both composed (broadcast), the switches both tools
share (options) and rsync-wave.py's command line (cli)."""
