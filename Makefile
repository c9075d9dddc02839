# hltcloud: see README.md. Targets need root where they touch the system (deps, demo, test).
PYTHON  ?= python3
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(DESTDIR)$(PREFIX)/bin
LIBDIR   = $(DESTDIR)$(PREFIX)/share/hltcloud/lib
MANDIR   = $(DESTDIR)$(PREFIX)/share/man/man1
COMPDIR  = $(DESTDIR)$(PREFIX)/share/bash-completion/completions
DOCDIR   = $(DESTDIR)$(PREFIX)/share/doc/hltcloud

TOOLS    = openstack-hlt-manage openstack-prefill-cache rsync-wave.py openstack-enter
DEB_PKGS = openssh-client openssh-server pdsh rsync qemu-utils iproute2 procps psmisc man-db groff-base openssl \
           shellcheck
PY_MODS  = keystoneauth1,novaclient,oslo_utils,yaml,pytest,hypothesis

.PHONY: all deps check test test-realcloud demo install uninstall bench clean

all:
	@echo "targets: deps check test test-realcloud demo install bench clean"

# Idempotent: installs only what is missing.
deps:
	@if ! dpkg -s $(DEB_PKGS) >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS); fi
	@if ! $(PYTHON) -c 'import $(PY_MODS)' 2>/dev/null; then \
	    $(PYTHON) -m pip install -q -r requirements-test.txt; fi

# The fast tier, for the inner loop: the units and the node scripts run for real on this
# machine; no simulated cluster, no real cloud, nothing marked slow (about 2 minutes).
check: deps
	HLTREAL_SKIP=1 $(PYTHON) -m pytest -p no:cacheprovider -q -m "not simcluster and not slow" tests

test: deps
	$(PYTHON) -m pytest -p no:cacheprovider -ra tests

# The real OpenStack services (tests/realcloud/README.md): installs them once (~1-2 min).
test-realcloud: deps
	$(PYTHON) tests/realcloud/realcloud install
	$(PYTHON) -m pytest -p no:cacheprovider -ra tests/realcloud

demo: deps
	$(PYTHON) tests/simcluster/demo

install:
	install -d $(BINDIR) $(LIBDIR)/hltcloud $(MANDIR) $(COMPDIR) $(DOCDIR)
	install -m 0644 SECURITY.md $(DOCDIR)/
	cd lib && find hltcloud \( -name '*.py' -o -name '*.sh' \) -exec install -D -m 0644 {} $(abspath $(LIBDIR))/{} \;
	for tool in $(TOOLS); do install -m 0755 bin/$$tool $(BINDIR)/$$tool; done
	for page in man/*.1; do install -m 0644 $$page $(MANDIR)/; done
	# bash-completion loads a command's file by its name: one copy a tool
	for tool in $(TOOLS); do install -m 0644 completion/hltcloud.bash $(COMPDIR)/$$tool; done

uninstall:
	for tool in $(TOOLS); do rm -f $(BINDIR)/$$tool $(COMPDIR)/$$tool; done
	rm -rf $(DESTDIR)$(PREFIX)/share/hltcloud $(DOCDIR)
	for page in man/*.1; do rm -f $(MANDIR)/$$(basename $$page); done

bench: deps
	for script in bench/bench_*.py; do $(PYTHON) $$script || exit 1; done

clean:
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
