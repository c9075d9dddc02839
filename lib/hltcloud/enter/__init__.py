"""openstack-enter: the command line (cli), the root-only credentials (credentials), the
openrc parser (openrc) and the child shell (shell)."""
