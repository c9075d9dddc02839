"""What runs around the tools' work: the audit record, re-run lists, host locks, private
directories, the host cache and tab completion's helper (complete)."""
