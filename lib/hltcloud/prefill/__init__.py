"""openstack-prefill-cache: the command line (cli), the run (run), --check (check) and what a
host's image cache holds (cache_state)."""
