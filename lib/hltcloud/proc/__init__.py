"""Processes: every command started, locally or on nodes (runner: results, process groups, ssh
options, pdsh), and one ssh connection a host (sshmaster)."""
