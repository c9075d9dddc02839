"""Hostile images (issue 19, row 2): whoever uploads a Glance image controls its bytes. A qcow2
with a backing file or an external data file, or a vmdk descriptor with a FLAT extent, makes
qemu-img (root, on a hypervisor) copy a root-only file into Nova's cache; a qcow2 called raw,
or a huge virtual size, is not what the site agreed to convert. Every such image is refused
on the head, in one line naming it and the reason, before a byte leaves the head."""
import os
import struct
import subprocess
from pathlib import Path

import pytest
from helpers import base_file, config_with

from hltcloud import config

TOOL = "openstack-prefill-cache"
SECRET = b"root-only secret of the hypervisor\n"
LIMIT = 1 << 30  # the site limit of these tests: 1 GiB


def qemu_img(*args):
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def root_only(path):
    """A root-only file (0600) of 1 MiB beginning with SECRET: what an attacker wants."""
    path.write_bytes(SECRET.ljust(1 << 20, b"s"))
    path.chmod(0o600)
    return str(path)


def make_image(kind, tmp):
    """The path of an image file of KIND (a key of CASES), made in the directory TMP."""
    image = tmp / f"{kind}.img"
    if kind == "backing-file":
        qemu_img("create", "-f", "qcow2", "-b", root_only(tmp / "secret"), "-F", "raw", image)
    elif kind == "data-file":  # qemu-img makes the data file: the secret goes in afterwards
        qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp / 'secret'},data_file_raw=on",
                 image, "1M")
        root_only(tmp / "secret")
    elif kind == "vmdk-flat-extent":  # a text descriptor: its data is any file it names
        image.write_text('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                         'createType="monolithicFlat"\n\n# Extent description\n'
                         f'RW 2048 FLAT "{root_only(tmp / "secret")}" 0\n\n'
                         'ddb.adapterType = "ide"\n')
    elif kind == "vmdk-sparse-named-extent":  # claims the allowed subformat, names a file
        image.write_text('# Disk DescriptorFile\nversion=1\ncreateType="monolithicSparse"\n'
                         f'RW 2048 FLAT "{root_only(tmp / "secret")}" 0\n')
    elif kind == "vmdk-bare-descriptor":  # an extent beside it: no data in this file at all
        image.write_text('# Disk DescriptorFile\nversion=1\ncreateType="monolithicSparse"\n'
                         'RW 2048 SPARSE "neighbour.vmdk"\n')
    elif kind == "qcow2-called-raw":
        qemu_img("create", "-f", "qcow2", image, "1M")
    elif kind == "oversized":
        qemu_img("create", "-f", "qcow2", image, str(2 * LIMIT))
    elif kind in ("qcow2", "vmdk"):
        qemu_img("create", "-f", kind, image, "4M")
    elif kind == "raw":
        image.write_bytes(os.urandom(1 << 20))
    elif kind == "raw-partitioned":  # an MBR with one Linux partition: found as "gpt", is raw
        entry = struct.pack("<B3BB3BII", 0, 0, 0x21, 0, 0x83, 0, 0, 0, 2048, 2048)
        image.write_bytes(bytes(446) + entry + bytes(48) + b"\x55\xaa" + bytes((1 << 20) - 512))
    return str(image)


# kind -> (Glance's disk_format, the reason it is refused; None: benign, accepted)
CASES = {
    "backing-file":
        ("qcow2", "it fails the safety check (backing_file: Image has a backing file)"),
    "data-file": ("qcow2", "it fails the safety check (data_file: Image has data_file set)"),
    "vmdk-flat-extent": ("vmdk", "it fails the safety check (descriptor: Unsupported subformat)"),
    "vmdk-sparse-named-extent":
        ("vmdk", "it fails the safety check (descriptor: Invalid extent filenames found)"),
    "vmdk-bare-descriptor": ("vmdk", "its virtual size cannot be read from its vmdk header"),
    "qcow2-called-raw": ("raw", "its data is qcow2, not raw as Glance says"),
    "oversized": ("qcow2", f"its virtual size of {2 * LIMIT} bytes is above the limit of "
                           f"{LIMIT} bytes ([prefill] max_virtual_size)"),
    "qcow2": ("qcow2", None),
    "vmdk": ("vmdk", None),
    "raw": ("raw", None),
    "raw-partitioned": ("raw", None),
}


@pytest.fixture(name="image_check")
def fixture_image_check():
    """The module under test, imported by the unit tests alone: the cluster tests below run
    the tool, and show what a tree without the check does."""
    from hltcloud.cloud import images as image_check
    return image_check


@pytest.mark.parametrize("kind", CASES)
def test_image_check(image_check, tmp_path, kind):
    path, (disk_format, reason) = make_image(kind, tmp_path), CASES[kind]
    if reason is None:
        assert image_check.check(path, disk_format, LIMIT) == \
            (1 if disk_format == "raw" else 4) << 20
        return
    with pytest.raises(image_check.ImageRefused) as err:
        image_check.check(path, disk_format, LIMIT)
    assert str(err.value) == reason
    assert err.value.exit_status == 1


def test_image_check_prints_nothing_itself(image_check, tmp_path, capfd):
    """The inspector logs its findings: the one line of the refusal is the only output."""
    with pytest.raises(image_check.ImageRefused):
        image_check.check(make_image("backing-file", tmp_path), "qcow2", LIMIT)
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("value, size", [(None, 1 << 40), ("1073741824", 1 << 30),
                                         ("500g", 500 << 30), ("1M", 1 << 20),
                                         ("1024T", 1 << 50)])
def test_max_virtual_size_setting(tmp_path, value, size):
    conf = tmp_path / "hltcloud.conf"
    conf.write_text("" if value is None else f"[prefill]\nmax_virtual_size = {value}\n")
    assert config.load(str(conf)).max_virtual_size == size


@pytest.mark.parametrize("value, message", [
    ("1.5G", "must be a number of bytes, optionally with K, M, G or T: '1.5G'"),
    ("-1G", "must be a number of bytes"), ("1P", "must be a number of bytes"),
    ("9" * 40, "must be a number of bytes"), ("", "must be a number of bytes"),
    ("1023K", "must be from 1M to 1024T: '1023K'"), ("1025T", "must be from 1M to 1024T"),
])
def test_max_virtual_size_bad_values(tmp_path, value, message):
    conf = tmp_path / "hltcloud.conf"
    conf.write_text(f"[prefill]\nmax_virtual_size = {value}\n")
    with pytest.raises(config.ConfigError) as err:
        config.load(str(conf))
    assert str(err.value).startswith("prefill.max_virtual_size ") and message in str(err.value)


def config_with_limit(cluster, tmp_path):
    conf = Path(config_with(cluster, tmp_path))
    conf.write_text(conf.read_text() + f"\n[prefill]\nmax_virtual_size = {LIMIT >> 30}G\n")
    return str(conf)


def nothing_on(cluster, node):
    """No transfer file, no cache entry, no private directory: instances/ holds only _base/,
    and _base/ is empty."""
    instances = cluster.node_dir(node) / "instances"
    return sorted(os.listdir(instances)) == ["_base"] and os.listdir(instances / "_base") == []


@pytest.mark.parametrize("kind", ["backing-file", "data-file", "vmdk-flat-extent",
                                  "qcow2-called-raw", "oversized"])
def test_prefill_refuses_hostile_image_before_sending(cluster, tmp_path, kind):
    disk_format, reason = CASES[kind]
    image_id = cluster.add_image_file(f"hostile-{kind}", make_image(kind, tmp_path), disk_format)
    targets = cluster.names[:2]
    res = cluster.run_tool(TOOL, "--config", config_with_limit(cluster, tmp_path),
                           f"hostile-{kind}", ",".join(targets))
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr.splitlines() == \
        [f"{TOOL}: Image hostile-{kind} (id={image_id}) refused: {reason}"]
    assert "transferring" not in res.stdout and "Converting" not in res.stdout, res.stdout
    for node in targets:
        assert nothing_on(cluster, node), list((cluster.node_dir(node)).rglob("*"))
        assert not base_file(cluster, node, image_id).exists()


def test_check_reads_no_hostile_image(cluster, tmp_path):
    """--check refuses it too, before qemu-img on the head would open the file it names."""
    image_id = cluster.add_image_file("hostile-check", make_image("vmdk-flat-extent", tmp_path),
                                      "vmdk")
    res = cluster.run_tool(TOOL, "--check", "hostile-check", cluster.names[0])
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr.splitlines() == \
        [f"{TOOL}: Image hostile-check (id={image_id}) refused: {CASES['vmdk-flat-extent'][1]}"]
    assert res.stdout == ""
