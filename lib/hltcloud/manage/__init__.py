"""openstack-hlt-manage: the command line (cli, options, context), the loops over hosts
(hosts, parallel), enable and disable (enable_disable, daemons), status, runvms, listwns, fit."""
