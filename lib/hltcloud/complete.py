"""What tab completion asks the cloud for: `python3 -m hltcloud.complete images` prints the
names of the active Glance images, one a line. The completion runs it under `timeout`, and
the cloud gets short timeouts here too: a slow cloud means no names, never a hung prompt."""
import sys

READ_TIMEOUT = 2  # seconds; the whole lookup is bounded by the caller's timeout as well


def images():
    from .cloud import Cloud
    glance = Cloud(read_timeout=READ_TIMEOUT).glance()
    path, params = "/v2/images", {"status": "active", "limit": 1000}
    names = set()
    while path and len(names) < 10_000:
        body = glance.get(path, params=params).json()
        names.update(image["name"] for image in body.get("images", []) if image.get("name"))
        path, params = body.get("next"), None
    print("\n".join(sorted(names)))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["images"]:
        print("usage: python3 -m hltcloud.complete images", file=sys.stderr)
        return 2
    try:
        images()
    except Exception:  # noqa: BLE001 -- completion offers nothing rather than an error
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
