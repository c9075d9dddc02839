"""What every openstack-hlt-manage command works with: options, site config, reporter,
ssh settings and (opened lazily, once) the cloud."""
import sys

from hltcloud.cloud.session import Cloud  # cheap: keystoneauth1 is loaded when the cloud is opened
from hltcloud.report import Reporter
from hltcloud.proc.runner import Ssh


class Context:
    def __init__(self, opts, config, stream=None):
        self.opts = opts
        self.config = config
        self.dry = not opts.for_real
        self.rep = Reporter(stream, no_colors=opts.no_colors,
                            line_output=opts.line_output or opts.subworker)
        self.ssh = Ssh(opts.ssh_config or config.ssh_config, config.ssh_user,
                       config.connect_timeout)
        self.connections = {}  # host -> its sshmaster.Master while its action runs
        # Hosts that disable's first phases (takeback.py) disabled and sent the deletes of:
        # a --parallel subworker's host when its parent says so, else filled by the phases.
        self.prepared = set(opts.hosts) if opts.prepared else set()
        self._cloud = None
        self._nova = None

    def emit(self, text):
        """Data (tables, JSON) go to standard output; with --json, messages go to stderr."""
        if self.rep.stream is sys.stdout:
            self.rep.write_line(text)  # same stream: keep the reporter's line discipline
        else:
            print(text, flush=True)

    @property
    def cloud(self):
        if self._cloud is None:
            # Only a --parallel subworker takes the token its parent handed over.
            self._cloud = Cloud(handoff=self.opts.subworker,  # CloudError: exit 3
                                read_timeout=self.config.read_timeout,
                                os_cloud=self.opts.os_cloud)
        return self._cloud

    @property
    def nova(self):
        """Nova's requests (cloud.nova.Nova: plain data, one kept-alive connection)."""
        if self._nova is None:
            from hltcloud.cloud.nova import Nova
            self._nova = Nova(self.cloud)
        return self._nova
