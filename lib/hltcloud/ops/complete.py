"""What tab completion asks for: `python3 -m hltcloud.ops.complete images|roles|clouds`
prints, one a line, the names of the active Glance images, of openstack-enter's roles (its
credentials directory, checked as openstack-enter checks it), or of the clouds.yaml entries
that --os-cloud can name (the file the tools would read, checked as they check it). The
completion runs it under `timeout`, and the cloud gets short timeouts here too: a slow
cloud means no names, never a hung prompt.

Anyone who can upload an image names it: only names of validate.py's rule (letters, digits,
'.', '_', '-') are printed. Any other could hold `$(...)`, a newline or a terminal escape,
and would be the shell's to expand once completed onto root's command line."""
import sys

from hltcloud.validate import is_safe_name

READ_TIMEOUT = 2  # seconds; the whole lookup is bounded by the caller's timeout as well


def images():
    from hltcloud.cloud.session import Cloud
    from hltcloud.cloud.glance import pages
    glance = Cloud(read_timeout=READ_TIMEOUT).glance()
    names = set()
    for body in pages(glance, "/v2/images", {"status": "active", "limit": 1000}):
        names.update(image.get("name") for image in body.get("images", [])
                     if is_safe_name(image.get("name")))
        if len(names) >= 10_000:
            break
    print("\n".join(sorted(names)))


def roles():
    from hltcloud.config import load
    from hltcloud.enter.credentials import roles as defined
    print("\n".join(defined(load(None).credentials_dir)))


def clouds():
    import os
    from hltcloud.cloud.credentials import cloud_names
    print("\n".join(name for name in cloud_names(os.environ) if is_safe_name(name)))


LISTS = {"images": images, "roles": roles, "clouds": clouds}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in LISTS:
        print(f"usage: python3 -m hltcloud.ops.complete {'|'.join(LISTS)}", file=sys.stderr)
        return 2
    try:
        LISTS[argv[0]]()
    except Exception:  # noqa: BLE001 -- completion offers nothing rather than an error
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
